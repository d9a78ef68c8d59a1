"""The models of bench/bench_train.cpp in PyTorch, with the same sizes and objectives.

VAE: encoder 784-512-256-64 (relu; the last layer gives mu | logvar, Z = 32), decoder
32-256-512-784 (relu; logits). Objective per batch of N images x:
    recon = sum over pixels of BCE-with-logits(logits, x), averaged over the batch
    kl    = -1/2 sum_j (1 + logvar - mu^2 - exp(logvar)), averaged over the batch
    loss  = recon + kl                                   (the negative ELBO, beta = 1)
with logvar clamped to [-30, 20] wherever it is used, as latent's ops do (core/ops/vae.h), and
one sample z = mu + exp(logvar / 2) * eps per image.

AE: encoder 784-512-256-32 (relu, linear code), decoder 32-256-512-784 (relu; logits), loss =
recon alone.

Initialisation as latent's nn::MLP: Kaiming-uniform (relu gain) for layers followed by a relu,
Xavier-uniform for the last layer of each network, zero biases.
"""

import torch
from torch import nn
import torch.nn.functional as F

PIXELS = 784
HIDDEN = (512, 256)
LATENT = 32
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def mlp(sizes):
    """Linear layers with relu between them, none after the last."""
    layers = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        if last:
            nn.init.xavier_uniform_(linear.weight)
        else:
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def bce_recon(logits, x):
    """BCE with logits summed over pixels, averaged over the batch."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = mlp((PIXELS, *HIDDEN, 2 * LATENT))
        self.decoder = mlp((LATENT, *reversed(HIDDEN), PIXELS))

    def forward(self, x):
        """The training loss of the batch x [N, 784] (a scalar)."""
        h = self.encoder(x)
        mu, logvar = h[:, :LATENT], h[:, LATENT:]
        logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = bce_recon(self.decoder(z), x)
        kl = -0.5 * torch.sum(1.0 + logvar - mu * mu - torch.exp(logvar)) / x.shape[0]
        return recon + kl


class AE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = mlp((PIXELS, *HIDDEN, LATENT))
        self.decoder = mlp((LATENT, *reversed(HIDDEN), PIXELS))

    def forward(self, x):
        """The training loss of the batch x [N, 784] (a scalar)."""
        return bce_recon(self.decoder(self.encoder(x)), x)


def make_model(name):
    return {"vae": VAE, "ae": AE}[name]()


def step_flops(name, batch):
    """GEMM flops of one training step, counted as bench_train.cpp counts them: 2 N in out per
    layer for the forward, as much again for dW and for dx, except the first layer's dx."""
    encoder = (PIXELS, *HIDDEN, 2 * LATENT if name == "vae" else LATENT)
    decoder = (LATENT, *reversed(HIDDEN), PIXELS)
    per_row = 0.0
    for sizes in (encoder, decoder):
        for a, b in zip(sizes[:-1], sizes[1:]):
            per_row += 3.0 * 2.0 * a * b
    per_row -= 2.0 * PIXELS * HIDDEN[0]
    return per_row * batch
