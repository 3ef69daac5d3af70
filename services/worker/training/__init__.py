"""LoRA adaptation: the supervised set, the trainer, the evaluation gate and the training job."""
