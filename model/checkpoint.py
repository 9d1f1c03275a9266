"""Reading the checkpoints ``model.train`` writes, and the one error class of its options.

Apart from ``model.train`` so that ``python -m model.train`` (run as ``__main__``) and the modules
it calls (``model.distill``) raise and catch the same ``TrainError``.
"""
from pathlib import Path


class TrainError(ValueError):
    """A bad combination of options or a checkpoint that does not fit (one-line message)."""


def read_checkpoint(path, option, device="cpu"):
    """The checkpoint that ``model.train`` wrote at ``path`` (tensors and plain values only); a
    missing or unreadable file raises ``TrainError`` naming ``option``."""
    import pickle

    import torch

    accepted = "a checkpoint.pt of model.train" + (
        "" if option == "--resume" else ", or a network file (.json)")
    if not Path(path).is_file():
        raise TrainError(f"{option}: no checkpoint file {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        state["config"], state["model"], state["optimizer"], state["epoch"], state["history"]
    except pickle.UnpicklingError:  # torch's own text advises loading it unsafely: not repeated
        raise TrainError(f"{option}: {path} is not a checkpoint of tensors and plain values "
                         f"(nothing else is ever loaded); accepted: {accepted}") from None
    except Exception as error:      # torch raises many kinds for a bad file
        reason = str(error).splitlines()[0] if str(error) else ""
        raise TrainError(f"{option}: {path} is not a readable checkpoint "
                         f"({type(error).__name__}: {reason}); accepted: {accepted}") from None
    return state
