"""Guest side: PID 1 inside the VM. Standard library only."""
