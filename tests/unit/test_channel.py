"""The host<->guest channel: framing and typed messages survive any split of the byte stream (runq.channel)."""

import pytest

from runq import channel as ch


def test_messages_round_trip_through_arbitrary_splits():
    cfg = ch.GuestConfig(args=["sh", "-c", "echo hi"], env=["A=1"], uid=1000, rlimits=[("RLIMIT_NOFILE", 5, 6)],
                         tmpfs=[("/tmp", "nosuid")])
    msgs = [ch.Config(cfg), ch.Stdin(b"x" * 70000), ch.StdinEof(), ch.Stdout(b"out"), ch.Stderr(b"err"),
            ch.Signal(15), ch.WinSize(24, 80), ch.Started(7), ch.Exit(137), ch.Log("error", "boom")]
    wire = b"".join(m.encode() for m in msgs)
    for step in (1, 7, 4096, len(wire)):
        d = ch.Decoder()
        got = []
        for i in range(0, len(wire), step):
            got += list(d.feed(wire[i:i + step]))
        assert got == msgs


def test_unknown_type_is_rejected():
    with pytest.raises(ch.ChannelError):
        list(ch.Decoder().feed(ch.HEADER.pack(0, 200)))


def test_oversized_message_is_rejected():
    with pytest.raises(ch.ChannelError):
        list(ch.Decoder().feed(ch.HEADER.pack(ch.MAX_PAYLOAD + 1, ch.Stdout.TYPE)))


def test_stdout_and_stderr_are_distinct_types():
    assert ch.Stdout.TYPE != ch.Stderr.TYPE
