"""The paper's fully connected GAN as a plain PyTorch CPU training loop (benchmark only).

Written the way popular PyTorch GAN repositories write it: `nn.Sequential` models, maxout as
`view` + `max`, `nn.Dropout`, `BCEWithLogitsLoss` and `torch.optim.SGD` with momentum. It does the
same arithmetic per step as gan_jax's `train_step` (see `GanTrainer.step`), so the two can be timed
side by side. Never imported by the package; needs `pip install torch` (the `bench` extra).

Differences from gan_jax that do not change the arithmetic:
  * torch.optim.SGD keeps its velocity in gradient units (buf <- m buf + g; p <- p - lr buf)
    where pylearn2 keeps it in parameter units (v <- m v - lr g; p <- p + v): the two agree
    exactly while lr is constant, and lr here decays by a factor 1.000004 per step.
  * Noise and dropout masks come from torch's generator, not from per-example JAX keys.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from benchmarks.common import flax_layer_order

ACTIVATIONS = {'relu': nn.ReLU, 'sigmoid': nn.Sigmoid, 'linear': nn.Identity}


class Maxout(nn.Module):
  """A linear layer of `units * pieces` outputs, max over each unit's contiguous pieces."""

  def __init__(self, in_features: int, units: int, pieces: int):
    super().__init__()
    self.units, self.pieces = units, pieces
    self.linear = nn.Linear(in_features, units * pieces)

  def forward(self, x):
    return self.linear(x).view(x.shape[0], self.units, self.pieces).max(dim=-1)[0]


def build_generator(model_config, image_shape) -> nn.Sequential:
  """G of `config.model`: z -> hidden layers -> output activation (flat image)."""
  m = model_config
  layers, width = [], m.z_dim
  for hidden, act in zip(m.g_hidden, m.g_activations):
    layers += [nn.Linear(width, hidden), ACTIVATIONS[act]()]
    width = hidden
  layers += [nn.Linear(width, int(np.prod(image_shape))), ACTIVATIONS[m.g_output_activation]()]
  return nn.Sequential(*layers)


def build_discriminator(model_config, image_shape) -> nn.Sequential:
  """D of `config.model`: dropout before every maxout layer and before the output unit."""
  m = model_config
  layers, width = [nn.Flatten()], int(np.prod(image_shape))
  for i, units in enumerate(m.d_units):
    keep = m.d_input_keep if i == 0 else m.d_hidden_keep
    layers += [nn.Dropout(1.0 - keep), Maxout(width, units, m.d_pieces)]
    width = units
  layers += [nn.Dropout(1.0 - m.d_hidden_keep), nn.Linear(width, 1)]
  return nn.Sequential(*layers)


def _linears(model: nn.Module) -> list[nn.Linear]:
  return [mod for mod in model.modules() if isinstance(mod, nn.Linear)]


def load_flax_params(model: nn.Module, flax_params) -> None:
  """Copies gan_jax's Dense parameters (kernel [in, out]) into the model's nn.Linear layers."""
  dense = flax_params['params']
  names = flax_layer_order(dense)
  linears = _linears(model)
  if len(names) != len(linears):
    raise ValueError(f'{len(names)} Flax layers for {len(linears)} torch layers.')
  with torch.no_grad():
    for name, lin in zip(names, linears):
      lin.weight.copy_(torch.from_numpy(np.asarray(dense[name]['kernel']).T.copy()))
      lin.bias.copy_(torch.from_numpy(np.asarray(dense[name]['bias']).copy()))


def init_like_gan_jax(g: nn.Module, d: nn.Module, model_config) -> None:
  """pylearn2's initialisation as gan_jax uses it (uniform ranges, zero or given biases)."""
  m = model_config
  with torch.no_grad():
    g_lin = _linears(g)
    for lin, spec in zip(g_lin, list(m.g_inits) + [m.g_output_init]):
      kind, _, arg = spec.partition(':')
      if kind != 'uniform':
        raise ValueError(f"Only 'uniform:<scale>' initialisers are ported, got '{spec}'.")
      lin.weight.uniform_(-float(arg), float(arg))
    for lin, bias in zip(g_lin, list(m.g_bias) + [0.0]):
      lin.bias.fill_(bias)
    for lin in _linears(d):
      lin.weight.uniform_(-m.d_init_range, m.d_init_range)
      lin.bias.zero_()


class GanTrainer:
  """Both networks, their SGD optimisers and the pylearn2 schedules; `step` runs one update.

  Args:
    config: gan_jax's experiment config (model, optim, train sections).
    image_shape: (H, W, C).
    train_size: examples per epoch (for the momentum schedule).
  """

  def __init__(self, config, image_shape, train_size: int):
    self.config = config
    self.g = build_generator(config.model, image_shape)
    self.d = build_discriminator(config.model, image_shape)
    init_like_gan_jax(self.g, self.d, config.model)
    o = config.optim
    if o.name != 'sgd_momentum':
      raise ValueError(f"Only optim.name='sgd_momentum' is ported, got '{o.name}'.")
    self.g_opt = torch.optim.SGD(self.g.parameters(), lr=o.learning_rate,
                                 momentum=o.init_momentum, foreach=True)
    self.d_opt = torch.optim.SGD(self.d.parameters(), lr=o.learning_rate,
                                 momentum=o.init_momentum, foreach=True)
    self.bce = nn.BCEWithLogitsLoss()
    self.train_size = train_size
    self.updates = 0  # Optimiser updates so far (pylearn2's schedules count these).
    self.g_params = list(self.g.parameters())
    self.d_params = list(self.d.parameters())

  def _schedule(self):
    """Sets lr and momentum of this update from pylearn2's ExponentialDecay / MomentumAdjustor."""
    o, t = self.config.optim, self.updates
    lr = max(o.learning_rate / o.lr_decay_factor**t, o.min_lr)
    epoch = math.floor(t * self.config.train.batch_size / self.train_size) + 1
    span = max(o.momentum_saturate_epoch - o.momentum_start_epoch, 1)
    alpha = min(max((epoch - o.momentum_start_epoch) / span, 0.0), 1.0)
    momentum = o.init_momentum + alpha * (o.final_momentum - o.init_momentum)
    for opt in (self.g_opt, self.d_opt):
      for group in opt.param_groups:
        group['lr'], group['momentum'] = lr, momentum

  def _noise(self, batch: int):
    m = self.config.model
    if m.prior == 'uniform':  # U(-sqrt 3, sqrt 3), as gan_jax.
      return (torch.rand(batch, m.z_dim) * 2.0 - 1.0) * math.sqrt(3.0)
    return torch.randn(batch, m.z_dim)

  def _d_loss(self, real_logits, fake_logits):
    return 0.5 * (self.bce(real_logits, torch.ones_like(real_logits)) +
                  self.bce(fake_logits, torch.zeros_like(fake_logits)))

  def _g_loss(self, fake_logits):
    if self.config.train.generator_loss == 'non_saturating':
      return self.bce(fake_logits, torch.ones_like(fake_logits))
    return -self.bce(fake_logits, torch.zeros_like(fake_logits))

  def step(self, x) -> dict[str, torch.Tensor]:
    """One update on the real batch `x` [B, H, W, C]; returns the losses as tensors."""
    self.g.train()
    self.d.train()
    self._schedule()
    if self.config.train.update_rule == 'simultaneous':
      out = self._simultaneous(x)
    else:
      out = self._alternating(x)
    self.updates += 1
    return out

  def _simultaneous(self, x):
    # G forward, D forward on real and fake, both gradients from that one D pass, both updates.
    fake = self.g(self._noise(x.shape[0]))
    real_logits = self.d(x).squeeze(1)
    fake_logits = self.d(fake).squeeze(1)
    d_loss, g_loss = self._d_loss(real_logits, fake_logits), self._g_loss(fake_logits)
    # autograd.grad prunes the graph: D's gradient skips G, G's skips D's weight gradients.
    d_grads = torch.autograd.grad(d_loss, self.d_params, retain_graph=True)
    g_grads = torch.autograd.grad(g_loss, self.g_params)
    for params, grads in ((self.d_params, d_grads), (self.g_params, g_grads)):
      for p, g in zip(params, grads):
        p.grad = g
    self.d_opt.step()
    self.g_opt.step()
    return {'d_loss': d_loss.detach(), 'g_loss': g_loss.detach()}

  def _alternating(self, x):
    # Algorithm 1 with k = 1: a D step on G(z).detach(), then a G step with fresh z.
    with torch.no_grad():
      fake = self.g(self._noise(x.shape[0]))
    d_loss = self._d_loss(self.d(x).squeeze(1), self.d(fake).squeeze(1))
    self.d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    self.d_opt.step()
    # D's weights need no gradient in G's step (the usual set_requires_grad(D, False)).
    for p in self.d_params:
      p.requires_grad_(False)
    g_loss = self._g_loss(self.d(self.g(self._noise(x.shape[0]))).squeeze(1))
    self.g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    self.g_opt.step()
    for p in self.d_params:
      p.requires_grad_(True)
    return {'d_loss': d_loss.detach(), 'g_loss': g_loss.detach()}


def param_count(model: nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())
