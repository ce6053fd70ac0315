"""PyTorch modules for recurrent models that edgecompile compiles: FastRNN and FastGRNN
cells (as in Microsoft EdgeML) with low-rank and sparse W and U, and an RNN wrapper
that runs a cell over a sequence.

    cell = FastGRNNCell(8, 32, w_rank=4, u_rank=8)
    rnn = RNN(cell)                       # input (N, T, D), batch first
    h = rnn(x)                            # final hidden state (N, H); RNN(cell, return_sequences=True): (N, T, H)

They train as usual.  When a model containing them is exported to ONNX (edgecompile does
this itself for .pt files loaded with --trust-pickle or for edgecompile.qat.prepare, or you
call torch.onnx.export), each RNN becomes one node `edgecompile.FastRNN` / `edgecompile.FastGRNN`
that edgecompile turns into a loop over time in C, instead of T unrolled copies.
"""
from __future__ import annotations

import torch
import torch.nn as nn

NONLINEARITIES = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


class _LowRank(nn.Module):
    """A (out x in) matrix, full or as the product of (out x rank) and (rank x in) factors."""

    def __init__(self, out_features: int, in_features: int, rank: int | None):
        super().__init__()
        self.rank = rank
        if rank is None:
            self.full = nn.Parameter(torch.randn(out_features, in_features) * 0.1)
        else:
            self.left = nn.Parameter(torch.randn(out_features, rank) * 0.1)
            self.right = nn.Parameter(torch.randn(rank, in_features) * 0.1)

    def factors(self) -> list[torch.Tensor]:
        return [self.full] if self.rank is None else [self.left, self.right]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rank is None:
            return x @ self.full.T
        return (x @ self.right.T) @ self.left.T  # two small products, W never rebuilt

    @torch.no_grad()
    def sparsify(self, keep: float) -> None:
        """Hard-threshold every factor to its `keep` share of largest weights."""
        if keep >= 1.0:
            return
        for w in self.factors():
            k = max(1, int(round(keep * w.numel())))
            threshold = w.abs().flatten().kthvalue(w.numel() - k + 1).values
            w.mul_(w.abs() >= threshold)


class FastRNNCell(nn.Module):
    """h~ = act(W x + U h + b);  h' = sigmoid(alpha) h~ + sigmoid(beta) h."""

    cell_type = "FastRNN"

    def __init__(self, input_size: int, hidden_size: int, update_nonlinearity: str = "tanh",
                 w_rank: int | None = None, u_rank: int | None = None, w_sparsity: float = 1.0,
                 u_sparsity: float = 1.0, alpha_init: float = -3.0, beta_init: float = 3.0):
        super().__init__()
        if update_nonlinearity not in NONLINEARITIES:
            raise ValueError(f"update_nonlinearity must be one of {sorted(NONLINEARITIES)}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.update_nonlinearity = update_nonlinearity
        self.w_sparsity, self.u_sparsity = w_sparsity, u_sparsity
        self.W = _LowRank(hidden_size, input_size, w_rank)
        self.U = _LowRank(hidden_size, hidden_size, u_rank)
        self.bias_update = nn.Parameter(torch.ones(hidden_size))
        self.alpha = nn.Parameter(torch.tensor([alpha_init]))
        self.beta = nn.Parameter(torch.tensor([beta_init]))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        cand = NONLINEARITIES[self.update_nonlinearity](self.W(x) + self.U(h) + self.bias_update)
        return torch.sigmoid(self.alpha) * cand + torch.sigmoid(self.beta) * h

    def sparsify(self) -> None:
        self.W.sparsify(self.w_sparsity)
        self.U.sparsify(self.u_sparsity)

    def export_params(self) -> list[torch.Tensor]:
        return [*self.W.factors(), *self.U.factors(), self.bias_update, self.alpha, self.beta]


class FastGRNNCell(FastRNNCell):
    """z = sigmoid(W x + U h + b_z);  h~ = act(W x + U h + b_h);
    h' = (sigmoid(zeta) (1 - z) + sigmoid(nu)) h~ + z h."""

    cell_type = "FastGRNN"

    def __init__(self, input_size: int, hidden_size: int, update_nonlinearity: str = "tanh",
                 w_rank: int | None = None, u_rank: int | None = None, w_sparsity: float = 1.0,
                 u_sparsity: float = 1.0, zeta_init: float = 1.0, nu_init: float = -4.0):
        super().__init__(input_size, hidden_size, update_nonlinearity, w_rank, u_rank, w_sparsity, u_sparsity)
        del self.alpha, self.beta
        self.bias_gate = nn.Parameter(torch.ones(hidden_size))
        self.zeta = nn.Parameter(torch.tensor([zeta_init]))
        self.nu = nn.Parameter(torch.tensor([nu_init]))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        wx, uh = self.W(x), self.U(h)
        z = torch.sigmoid(wx + uh + self.bias_gate)
        cand = NONLINEARITIES[self.update_nonlinearity](wx + uh + self.bias_update)
        return (torch.sigmoid(self.zeta) * (1 - z) + torch.sigmoid(self.nu)) * cand + z * h

    def export_params(self) -> list[torch.Tensor]:
        return [*self.W.factors(), *self.U.factors(), self.bias_gate, self.bias_update, self.zeta, self.nu]


class _ExportedRNN(torch.autograd.Function):
    """Only used while exporting to ONNX: the whole sequence loop as one custom node.  Its forward
    pass only gives the export the output's shape (the values are never used)."""

    @staticmethod
    def forward(ctx, x, cell_type: str, hidden: int, w_rank: int, u_rank: int, nonlinearity: str,
                return_sequences: bool, *params):
        shape = (x.shape[0], x.shape[1], hidden) if return_sequences else (x.shape[0], hidden)
        return torch.zeros(shape, dtype=x.dtype)

    @staticmethod
    def symbolic(g, x, cell_type, hidden, w_rank, u_rank, nonlinearity, return_sequences, *params):
        out = g.op(f"edgecompile::{cell_type}", x, *params, hidden_size_i=hidden, w_rank_i=w_rank,
                   u_rank_i=u_rank, nonlinearity_s=nonlinearity, return_sequences_i=int(return_sequences))
        sizes = x.type().sizes()  # tell the exporter the output's shape (it cannot infer a custom op's)
        if sizes is not None:
            out.setType(x.type().with_sizes(sizes[:2] + [hidden] if return_sequences else [sizes[0], hidden]))
        return out


def _run(cell: FastRNNCell, x: torch.Tensor, return_sequences: bool) -> torch.Tensor:
    h = torch.zeros(x.shape[0], cell.hidden_size, dtype=x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        h = cell(x[:, t], h)
        outputs.append(h)
    return torch.stack(outputs, dim=1) if return_sequences else h


class RNN(nn.Module):
    """Runs a FastRNN/FastGRNN cell over x of shape (N, T, D), h starting at zero.  Returns the final
    hidden state (N, H), or with return_sequences=True every step's (N, T, H)."""

    def __init__(self, cell: FastRNNCell, return_sequences: bool = False):
        super().__init__()
        self.cell = cell
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            c = self.cell
            return _ExportedRNN.apply(x, c.cell_type, c.hidden_size, c.W.rank or 0, c.U.rank or 0,
                                      c.update_nonlinearity, self.return_sequences, *c.export_params())
        return _run(self.cell, x, self.return_sequences)
