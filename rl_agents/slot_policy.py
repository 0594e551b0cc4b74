"""A slot-equivariant actor-critic for the dispatch env: one scorer shared by every courier slot.

The flat MLP of SB3's ``MultiInputPolicy`` learns a separate weight set for each of the K
candidate slots, although assigning to slot 3 means the same thing as assigning to slot 0 with
the slots' features swapped. :class:`SlotPolicy` scores every slot with the *same* small
network from that slot's courier features plus the context (the focus order, the situation and
a summary of the other waiting orders), so what it learns about one slot holds for all:

- ``features``: ``[order, global, mean of the waiting orders' features, their count / 10]``
  (the *context*, width C) followed by the K slots' courier features and the courier mask;
- slot ``k``'s logit: ``head(body([courier_k, context]))``, ``body`` two layers of ``hidden``;
- postpone's logit: ``wait([context, masked mean of the slots' body outputs])``;
- the critic: an MLP on all features (as in the default policy).

The same forward pass in numpy is :func:`rl_agents.model_io.slot_logits`, so a decision needs
no torch. Works with MaskablePPO and PPO (not DQN).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from numpy.typing import NDArray
from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def layout(space: spaces.Dict) -> dict[str, int]:
    """Widths of the parts of the feature vector for an observation space."""
    shape = {
        key: tuple(space[key].shape or ()) for key in ("couriers", "order", "global", "pending")
    }
    k, fc = shape["couriers"]
    context = shape["order"][0] + shape["global"][0] + shape["pending"][1] + 1
    return {"k": int(k), "courier": int(fc), "context": int(context)}


def _context(obs: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[order, global, mean waiting-order features, count / 10]`` (see ``model_io``)."""
    pmask = obs["pending_mask"]
    count = pmask.sum(-1, keepdim=True)
    mean = (obs["pending"] * pmask[..., None]).sum(-2) / count.clamp(min=1.0)
    return torch.cat([obs["order"], obs["global"], mean, count / 10.0], dim=-1)


class SlotFeatures(BaseFeaturesExtractor):
    """The observation as ``[context, slots' courier features, courier mask]``."""

    def __init__(self, observation_space: spaces.Dict) -> None:
        lay = layout(observation_space)
        dim = lay["context"] + lay["k"] * lay["courier"] + lay["k"]
        super().__init__(observation_space, features_dim=dim)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate the parts."""
        ctx = _context(observations)
        slots = observations["couriers"].flatten(1)
        return torch.cat([ctx, slots, observations["courier_mask"]], dim=1)


class SlotNet(nn.Module):
    """Actor (one logit per slot, plus postpone) and critic latent from :class:`SlotFeatures`."""

    def __init__(self, lay: dict[str, int], hidden: int, activation: type[nn.Module]) -> None:
        super().__init__()
        self.k, self.fc, self.c = lay["k"], lay["courier"], lay["context"]
        self.latent_dim_pi = self.k + 1
        self.latent_dim_vf = hidden
        self.body = nn.Sequential(
            nn.Linear(self.fc + self.c, hidden),
            activation(),
            nn.Linear(hidden, hidden),
            activation(),
        )
        self.head = nn.Linear(hidden, 1)
        self.wait = nn.Sequential(
            nn.Linear(self.c + hidden, hidden), activation(), nn.Linear(hidden, 1)
        )
        dim = self.c + self.k * self.fc + self.k
        self.critic = nn.Sequential(
            nn.Linear(dim, hidden), activation(), nn.Linear(hidden, hidden), activation()
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor logits and critic latent."""
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        """K slot logits and the postpone logit."""
        c, k, fc = self.c, self.k, self.fc
        ctx = features[:, :c]
        slots = features[:, c : c + k * fc].reshape(-1, k, fc)
        cmask = features[:, c + k * fc :]
        hid = self.body(torch.cat([slots, ctx.unsqueeze(1).expand(-1, k, -1)], dim=-1))
        scores = self.head(hid).squeeze(-1)
        pooled = (hid * cmask.unsqueeze(-1)).sum(1) / cmask.sum(1, keepdim=True).clamp(min=1.0)
        wait = self.wait(torch.cat([ctx, pooled], dim=-1))
        return torch.cat([scores, wait], dim=-1)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        """The value head's input."""
        return self.critic(features)


def _slot_net(policy: Any) -> SlotNet:
    """The :class:`SlotNet` of ``policy``'s observation space and settings."""
    return SlotNet(layout(policy.observation_space), policy.hidden, policy.activation_fn)


def _finish(policy: Any, lr_schedule: Any) -> None:
    """After SB3's build: logits straight from the net, small output layers, a new optimizer."""
    net: SlotNet = policy.mlp_extractor
    policy.action_net = nn.Identity()
    for layer in (net.head, net.wait[-1]):
        assert isinstance(layer, nn.Linear)
        nn.init.orthogonal_(layer.weight, gain=0.01)  # as SB3 does for its action head
        nn.init.zeros_(layer.bias)
    policy.optimizer = policy.optimizer_class(
        policy.parameters(), lr=lr_schedule(1), **policy.optimizer_kwargs
    )


def _with_slot_net(base: Any, name: str, algo: str) -> Any:
    """SB3 policy class ``base`` with :class:`SlotNet` in place of its MLP extractor."""

    def init(self: Any, *args: Any, hidden: int = 64, **kwargs: Any) -> None:
        self.hidden = hidden
        kwargs.setdefault("features_extractor_class", SlotFeatures)
        base.__init__(self, *args, **kwargs)

    def _build_mlp_extractor(self: Any) -> None:
        self.mlp_extractor = _slot_net(self)

    def _build(self: Any, lr_schedule: Any) -> None:
        base._build(self, lr_schedule)
        _finish(self, lr_schedule)

    namespace = {
        "__init__": init,
        "_build_mlp_extractor": _build_mlp_extractor,
        "_build": _build,
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f":class:`SlotNet` for {algo} (``hidden`` units per layer).",
    }
    return type(name, (base,), namespace)


#: The slot-equivariant policy for MaskablePPO.
MaskableSlotPolicy = _with_slot_net(
    MaskableMultiInputActorCriticPolicy, "MaskableSlotPolicy", "MaskablePPO"
)
#: The slot-equivariant policy for PPO.
SlotPolicy = _with_slot_net(MultiInputActorCriticPolicy, "SlotPolicy", "PPO")


def export_slot_net(policy: Any) -> tuple[dict[str, NDArray[np.float32]], str]:
    """The actor of a slot policy as numpy arrays, and its activation name."""
    net: SlotNet = policy.mlp_extractor
    act = net.body[1]
    activation = "tanh" if isinstance(act, nn.Tanh) else "relu" if isinstance(act, nn.ReLU) else ""
    if not activation:
        raise TypeError(f"cannot export activation {act!r} to numpy")
    mods = {
        "b0": net.body[0],
        "b1": net.body[2],
        "h": net.head,
        "w0": net.wait[0],
        "w1": net.wait[2],
    }
    arrays: dict[str, NDArray[np.float32]] = {}
    for name, lin in mods.items():
        assert isinstance(lin, nn.Linear)
        arrays[f"slot_{name}_w"] = lin.weight.detach().cpu().numpy().astype(np.float32)
        arrays[f"slot_{name}_b"] = lin.bias.detach().cpu().numpy().astype(np.float32)
    return arrays, activation


__all__ = [
    "MaskableSlotPolicy",
    "SlotFeatures",
    "SlotNet",
    "SlotPolicy",
    "export_slot_net",
    "layout",
]
