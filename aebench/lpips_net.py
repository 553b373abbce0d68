"""The LPIPS (AlexNet) network built offline from the weights store's AlexNet backbone: the
``lpips`` metric's network (:mod:`aebench.eval.metrics.lpips_alex`) and ER-NeRF's lip-stage loss
(``criterion_lpips_alex``, the same ``lpips.LPIPS(net="alex")``) share it.
"""

from __future__ import annotations


def build_lpips(backbone_state: dict):
    """An eval-mode ``lpips.LPIPS`` AlexNet model with ``backbone_state`` (torchvision
    ``alexnet`` keys ``features.{i}.weight|bias``) copied into its feature slices."""
    import warnings

    import lpips
    import torch

    with warnings.catch_warnings():  # torchvision's notice about lpips' old `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    used = set()
    with torch.no_grad():
        for sl in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5):
            for idx, layer in sl.named_children():
                for pname, param in layer.named_parameters(recurse=False):
                    key = f"features.{idx}.{pname}"
                    if key not in backbone_state:
                        raise KeyError(f"AlexNet weights lack {key}: not a torchvision alexnet state dict")
                    param.copy_(backbone_state[key])
                    used.add(key)
    if not used:
        raise KeyError("no AlexNet feature weights were loaded")
    return model.eval()


def lpips_from_store():
    """The network from the store's ``lpips_alexnet`` (raises :class:`aebench.weights.WeightsMissing`
    when absent)."""
    from aebench import weights as wstore

    return build_lpips(wstore.load_state_dict(wstore.resolve("lpips_alexnet").path))
