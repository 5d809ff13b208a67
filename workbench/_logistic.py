"""L2-regularised logistic regression in torch on any device: scikit-learn's ``LogisticRegression`` objective.

The probes of :mod:`workbench.probes` fit ``LogisticRegression(C=C)`` (lbfgs, an unpenalised intercept; binary for
two classes, multinomial softmax for more). With ``device=`` they fit the same objective here, full-batch L-BFGS in
float64 on the device:

    ``C * sum_i loss(x_i, y_i) + ||W||^2 / 2``

(the intercept is not penalised), where the loss is the log-loss of the sigmoid for two classes and of the softmax
for more, as scikit-learn defines it. Both solvers reach the one optimum of this strictly convex problem to their
tolerances, so the predictions agree except for points within about 1e-6 of the decision boundary.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TorchLogistic"]


class TorchLogistic:
    """``fit(x, y)`` / ``predict(x)`` like scikit-learn's ``LogisticRegression(C=C, max_iter=max_iter)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.2], [0.8], [1.0]]); y = np.array([0, 0, 1, 1])
    >>> TorchLogistic(C=10.0, device="cpu").fit(x, y).predict(np.array([[0.1], [0.9]])).tolist()
    [0, 1]
    """

    def __init__(self, C: float = 1.0, max_iter: int = 5000, device: Any = "cpu") -> None:
        self.C, self.max_iter, self.device = float(C), int(max_iter), device

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchLogistic:
        import torch

        from workbench._gram import torch_device

        device = torch_device(self.device)
        self.classes_ = np.unique(y)
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(device)
        codes = torch.from_numpy(np.searchsorted(self.classes_, y)).to(device)
        outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
        weight = torch.zeros((x.shape[1], outputs), dtype=torch.float64, device=device, requires_grad=True)
        bias = torch.zeros(outputs, dtype=torch.float64, device=device, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=self.max_iter, tolerance_grad=1e-8,
                                      tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

        def objective() -> Any:
            optimizer.zero_grad()
            logits = xt @ weight + bias
            if outputs == 1:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], codes.double(),
                                                                            reduction="sum")
            else:
                loss = torch.nn.functional.cross_entropy(logits, codes, reduction="sum")
            total = self.C * loss + 0.5 * (weight * weight).sum()
            total.backward()
            return total

        optimizer.step(objective)
        self.weight_, self.bias_ = weight.detach(), bias.detach()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(self.weight_.device)
        logits = xt @ self.weight_ + self.bias_
        codes = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)
        return self.classes_[codes.cpu().numpy()]
