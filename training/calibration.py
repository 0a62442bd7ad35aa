"""Temperature scaling (Guo et al. 2017) and expected calibration error."""

from __future__ import annotations

import torch


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T) on held-out data."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter)
    nll = torch.nn.CrossEntropyLoss()
    logits = logits.detach().float()

    def closure():
        optimizer.zero_grad()
        loss = nll(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    t = float(log_t.exp())
    return min(max(t, 0.05), 20.0)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    if len(labels) == 0:
        return 0.0
    confidence, predicted = probs.max(-1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            ece += inside.float().mean() * (confidence[inside].mean() - correct[inside].mean()).abs()
    return float(ece)


def fit_temperature_and_bias(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 200) -> tuple[float, list[float]]:
    """Temperature and per-class bias minimising NLL of softmax(logits / T + b) on held-out data.

    The bias undoes the prior shift that neutral subsampling and class weighting put into the
    logits, so that probabilities (and arg-max decisions) match the label mix of real news."""
    n_classes = logits.shape[-1]
    log_t = torch.zeros(1, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t, bias], lr=0.1, max_iter=max_iter)
    nll = torch.nn.CrossEntropyLoss()
    logits = logits.detach().float()

    def closure():
        optimizer.zero_grad()
        loss = nll(logits / log_t.exp() + bias, labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    t = min(max(float(log_t.exp()), 0.05), 20.0)
    b = (bias - bias.mean()).detach().tolist()
    return t, b
