"""Files on disk -> the ``Weights`` value ``core`` takes, and back: safetensors, shards, packed
checkpoints, bf16 masters, the other families, GGUF I2_S, and the Hugging Face cache.
"""
