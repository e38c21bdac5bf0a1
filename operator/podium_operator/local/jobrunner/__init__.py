"""The local job runner: runs each Job's containers as local processes and writes Job/Pod status as the Job controller and kubelet would."""
