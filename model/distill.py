"""Knowledge distillation: a trained teacher's scores guide a binary student (``--teacher``).

The loss is Hinton et al.'s: ``(1 - w) * task_loss + w * T^2 * KL(softmax(t/T) || softmax(s/T))``
with teacher scores ``t``, student scores ``s``, weight ``w`` and temperature ``T``. The teacher
is any checkpoint written by ``model.train`` (usually the ``--precision fp32`` twin) for the same
dataset, or a network file (``model.from_network``: a shipped model); it runs in eval mode,
without gradients, on the student's augmented batch. Only the training loss changes: the student
exports to the same hardware as without a teacher.
"""
from model.nets import build_model


def load_teacher(path, dataset, input_shape, classes, device, calibration):
    """The model of ``model.train``'s checkpoint ``path``, or of a network file (``.json``; batch
    norms calibrated on the images ``calibration``), in eval mode with frozen parameters; it must
    have been trained on ``dataset`` with ``classes`` scores (else ``TrainError``)."""
    from model.from_network import is_network_file, model_from_network_file
    from model.methods import get_method
    from model.checkpoint import TrainError, read_checkpoint

    if is_network_file(path):
        teacher = model_from_network_file(path, calibration, "--teacher")
        if (tuple(teacher.input_shape), teacher.num_classes) != (tuple(input_shape), classes):
            raise TrainError(f"--teacher: {path} takes {list(teacher.input_shape)} inputs to "
                             f"{teacher.num_classes} classes, not {list(input_shape)} to {classes}")
        return teacher.eval().requires_grad_(False).to(device)
    state = read_checkpoint(path, "--teacher")
    config = state["config"]
    if (config["dataset"], config["classes"]) != (dataset, classes):
        raise TrainError(f"--teacher: {path} was trained on {config['dataset']} with "
                         f"{config['classes']} classes, not {dataset} with {classes}")
    teacher = build_model(config["arch"], input_shape, classes, config["precision"])
    if config["precision"] == "binary":
        get_method(config.get("method", "ste")).prepare(teacher)
    teacher.load_state_dict(state["model"])
    teacher.eval().requires_grad_(False)
    return teacher.to(device)


def distillation_loss(student_scores, teacher_scores, temperature):
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch."""
    import torch.nn.functional as F

    return F.kl_div(F.log_softmax(student_scores / temperature, dim=1),
                    F.log_softmax(teacher_scores / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2
