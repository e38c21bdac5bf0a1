"""Few-shot meta-learning (MAML, FOMAML, Reptile, ProtoNets) on plain PyTorch; import the submodules directly."""
