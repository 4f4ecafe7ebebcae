"""Tokenizer, grammar score, model, training, checkpoints, generation, export, quantization."""
