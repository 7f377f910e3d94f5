"""bitnet.cpp's GGUF I2_S: the container, the 2-bit layout, architectures, metadata, scales."""
