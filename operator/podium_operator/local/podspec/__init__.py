"""Pure reading of a pod spec (containers, volumes, env, security) shared by the job runner and the sandbox."""
