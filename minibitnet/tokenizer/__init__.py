"""Tokenisation: tokenizer.json -> tiktoken, chat templates, BPE files, GGUF vocabularies.

The public names are :func:`load` and :class:`Tokenizer` (``minibitnet.tokenizer.load(folder)``);
each file below holds one piece:

- ``tokenizer.py``: :class:`Tokenizer` and :func:`load`, the files of a model folder -> tiktoken;
- ``bpe_file.py``, ``byte_level.py``: tokenizer.json's BPE vocabulary and GPT-2's byte alphabet;
- ``pretokenize.py``, ``heap_bpe.py``: which Split regexes are trusted, and encoding text of any
  length in bounded calls (tiktoken's BPE order, O(n log n) for one long piece);
- ``chat_template.py``: tokenizer_config.json's chat template, rendered in Jinja's sandbox;
- ``template_budget.py``, ``template_sizes.py``, ``template_sandbox.py``: the counted budgets
  of steps, output and work that a template renders within;
- ``tokenizer_json.py``, ``synthetic.py``: writing LLaMA-3-style tokenizer files;
- ``gguf.py``: a GGUF file's vocabulary <-> tokenizer files.
"""

from .tokenizer import Tokenizer, load

__all__ = ["Tokenizer", "load"]
