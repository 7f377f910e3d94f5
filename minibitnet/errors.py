"""The exceptions minibitnet raises for bad input.

Every message is one line that names the file or argument, what was found and what was
expected, e.g. ``model.safetensors: tensor 'model.norm.weight' has dtype I32, expected BF16``.
The command line prints these messages without a traceback (``--debug`` shows one).

Input that runs but most likely not as meant (a misspelt config.json key, kernels running
interpreted) gets :func:`warn_once` instead: one line on stderr, ``minibitnet: warning: ...``.
"""

import sys


class MinibitnetError(ValueError):
    """Base class: bad input that the user can fix (a file, an argument, a prompt)."""


class ConfigError(MinibitnetError):
    """config.json is missing, malformed, or describes a model this package cannot run."""


class CheckpointError(MinibitnetError):
    """model.safetensors is malformed or does not match config.json."""


class TokenizerError(MinibitnetError):
    """tokenizer.json / tokenizer_config.json is missing or malformed."""


class ArgumentError(MinibitnetError):
    """A function or command-line argument is out of range (token ids, lengths, sampling flags)."""


class ContextLengthError(ArgumentError):
    """A prompt or generation would exceed the model's max_position_embeddings."""


class NumericalError(MinibitnetError):
    """NaN or infinity appeared in the activations (named with the layer where it appeared)."""


class InstallationError(MinibitnetError):
    """This installation cannot give what was required: the compiled kernels, with
    MINIBITNET_REQUIRE_COMPILED=1, while the interpreted ones were imported."""


def one_line(text: str) -> str:
    """``text`` with newlines and other control characters escaped (``\\n``, ``\\x1b``).

    Names read from a file (a tensor name, a token) may hold any character; an error message
    that quotes one must still be one line, and must not drive the terminal it is printed on.
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Print ``minibitnet: warning: <message>`` on stderr, the first time only in this process.

    A plain line in the form of the command's errors: the warnings module would add a file name,
    a line number and a source line that say nothing to someone running ``minibitnet generate``.
    """
    if message in _warned:
        return
    _warned.add(message)
    print(f"minibitnet: warning: {one_line(message)}", file=sys.stderr, flush=True)
