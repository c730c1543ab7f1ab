"""Stand-in weights for the torchvision models: random, but numerically alive. Timing and checks only.

torchvision's pretrained weights cannot always be downloaded (not at all on our CI). A freshly
initialised network is a poor stand-in: its batch-norm statistics are the defaults, activations
shrink layer by layer, and its person probability is one constant (0.0473 everywhere for
DeepLabV3), so "two backends agree" would be trivially true. Here the batch-norm statistics are
re-estimated on the bundled sample photo and the last layer is scaled so that the person
probability spans 0..1 across the picture, with real boundaries between mask and background.

The result recognises nothing. It is for speed benchmarks and for comparing inference paths
(eager vs channels_last vs ONNX Runtime), never for quality figures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Spread (standard deviation across classes) of the stand-in logits; pretrained nets are of this order.
LOGIT_SPREAD = 4.0


def _classifier_convs(name: str, net: nn.Module) -> list[nn.Conv2d]:
    if name == "deeplabv3":
        return [net.classifier[-1]]
    return [net.classifier.low_classifier, net.classifier.high_classifier]


def stand_in_state_dict(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict for torchvision's ``name`` ("deeplabv3" or "lraspp") architecture (see module doc).

    Deterministic for a given ``seed``; the DeepLabV3 one includes the auxiliary head, like the
    pretrained weights. Takes about a second on a CPU.
    """
    from ..io.sample import sample_image
    from .torchvision_models import IMAGENET_MEAN, IMAGENET_STD, VOC_PERSON, _architecture

    if name not in ("deeplabv3", "lraspp"):
        raise ValueError(f"stand-in weights exist for 'deeplabv3' and 'lraspp'; got {name!r}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = _architecture(name, aux_loss=name == "deeplabv3")
    image = torch.from_numpy(sample_image()).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def batch(size: tuple[int, int]) -> torch.Tensor:
        x = (F.interpolate(image, size=size, mode="bilinear", antialias=True) - mean) / std
        return torch.cat([x, x.flip(-1), x.flip(-2), 0.5 * x])

    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()  # deterministic calibration
    with torch.no_grad():
        for size in ((256, 256), (192, 320), (320, 240)):
            net(batch(size))
        net.eval()
        x = batch((256, 256))[:1]
        logits = net(x)["out"]
        scale = LOGIT_SPREAD / float(logits.std(dim=1).mean())
        convs = _classifier_convs(name, net)
        for conv in convs:
            conv.weight.mul_(scale)
            if conv.bias is not None:
                conv.bias.mul_(scale)
        # shift the person logit so that about a third of the picture is "person"
        logits = net(x)["out"]
        margin = logits[:, VOC_PERSON] - torch.logsumexp(
            torch.cat([logits[:, :VOC_PERSON], logits[:, VOC_PERSON + 1 :]], dim=1), dim=1
        )
        shift = -float(torch.quantile(margin.flatten(), 2 / 3))
        bias = convs[-1].bias
        bias[VOC_PERSON] += shift
    return {k: v.clone() for k, v in net.state_dict().items()}
