"""Training BitNet b1.58 models in NumPy, every gradient written by hand.

- :mod:`.layers`, :mod:`.attention`: forward and backward of each layer; the straight-through
  estimator for ternary weights and int8 activations
- :mod:`.model`: the transformer in training form: parameters, loss, gradients
- :mod:`.optim`: AdamW and the two-stage schedule of BitNet b1.58 2B4T
- :mod:`.bpe`: byte-level BPE training, written as a LLaMA-3 style tokenizer.json
- :mod:`.data`: text files -> token ids -> batches
- :mod:`.export`: latent weights -> a model folder in the 2B4T layout
- :mod:`.loop`: the training loop with checkpoints and exact resume (``minibitnet train``)
"""
