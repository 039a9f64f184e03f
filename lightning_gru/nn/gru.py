"""``lightning_gru.nn.GRU``: a drop-in ``torch.nn.GRU`` with a Cython CPU kernel."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from lightning_gru.functional import BACKENDS, gru
from lightning_gru.functional._traceable import zero_state
from lightning_gru.functional.gru import autocast_enabled


class GRU(torch.nn.GRU):
    r"""A multi-layer gated recurrent unit, interchangeable with :class:`torch.nn.GRU`.

    Same arguments, parameters (names, shapes, initialisation), inputs and outputs as
    ``torch.nn.GRU``; a ``state_dict`` loads in both directions. On CPU (float32/float64) it
    runs the Cython kernel of this package; on CUDA it runs torch's own GRU (cuDNN).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        device, dtype: as in :class:`torch.nn.GRU`.
        reset_after: ``True`` (default) is the cuDNN/PyTorch cell,
            :math:`n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn}))`.
            ``False`` is the original GRU of Cho et al. (2014), as in the textbooks and Keras's
            ``reset_after=False``: :math:`n = \tanh(W_{in} x + b_{in} + W_{hn} (r \odot h)
            + b_{hn})`. Both use the same parameters. On CUDA, ``reset_after=False`` runs a
            pure-torch loop (correct, slower than cuDNN).
        backend: ``"auto"`` (Cython on CPU, torch on CUDA), ``"cython"`` or ``"torch"``.

    Example:
        >>> import torch
        >>> from lightning_gru.nn import GRU
        >>> gru = GRU(input_size=8, hidden_size=16, num_layers=2, batch_first=True)
        >>> output, h_n = gru(torch.randn(4, 10, 8))  # (B, T, I)
        >>> output.shape, h_n.shape
        (torch.Size([4, 10, 16]), torch.Size([2, 4, 16]))
        >>> reference = torch.nn.GRU(8, 16, num_layers=2, batch_first=True)
        >>> reference.load_state_dict(gru.state_dict())
        <All keys matched successfully>
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        reset_after: bool = True,
        backend: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if reset_after not in (True, False):  # a string "False" would read as True
            raise TypeError(f"reset_after should be a bool, got {reset_after!r}")
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            device=device, dtype=dtype,
        )  # fmt: skip
        self.reset_after = bool(reset_after)
        self.backend = backend

    def extra_repr(self) -> str:
        extra = super().extra_repr()
        if not self.reset_after:
            extra += ", reset_after=False"
        if self.backend != "auto":
            extra += f", backend={self.backend!r}"
        return extra

    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        weights = self._current_weights()
        num_directions = 2 if self.bidirectional else 1
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if batch_sizes.is_floating_point() or batch_sizes.is_complex():
                raise TypeError(
                    f"PackedSequence batch_sizes must be integers, got dtype {batch_sizes.dtype}"
                )
            if batch_sizes.dim() != 1:  # (torch: a TypeError too without an h0)
                raise TypeError(
                    "PackedSequence batch_sizes must be 1-D, one size per step, got shape "
                    f"{tuple(batch_sizes.shape)}"
                )
            max_batch_size = int(batch_sizes[0])
            is_batched = True
        else:
            data, batch_sizes, sorted_indices, unsorted_indices = input, None, None, None
            if input.dim() not in (2, 3):
                raise ValueError(f"GRU: Expected input to be 2D or 3D, got {input.dim()}D instead")
            is_batched = input.dim() == 3
            if not is_batched:
                data = input.unsqueeze(0 if self.batch_first else 1)
                if hx is not None:
                    if hx.dim() != 2:
                        raise RuntimeError(
                            "For unbatched 2-D input, hx should also be 2-D but got "
                            f"{hx.dim()}-D tensor"
                        )
                    hx = hx.unsqueeze(1)
            elif hx is not None and hx.dim() != 3:
                raise RuntimeError(
                    f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor"
                )
            max_batch_size = data.size(0 if self.batch_first else 1)
        if hx is None:
            self.check_input(data, batch_sizes)
            shape = (self.num_layers * num_directions, max_batch_size, self.hidden_size)
            hx = zero_state(shape, data)
        else:
            hx = self.permute_hidden(hx, sorted_indices)
            self.check_forward_args(data, hx, batch_sizes)
        self._check_kernel_args(
            data, hx, weights, seq_dim=None if packed else 1 if self.batch_first else 0
        )

        if not packed and self.batch_first:
            data = data.transpose(0, 1)  # (T, B, I)
        output, hidden = gru(
            data, hx, weights, self.num_layers, self.bidirectional,
            batch_sizes=batch_sizes, reset_after=self.reset_after, dropout=self.dropout,
            training=self.training, backend=self.backend,
        )  # fmt: skip
        hidden = self.permute_hidden(hidden, unsorted_indices)
        if packed:
            return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), hidden
        if self.batch_first:
            output = output.transpose(0, 1)  # (B, T, D*H)
        if not is_batched:
            output = output.squeeze(0 if self.batch_first else 1)
            hidden = hidden.squeeze(1)
        return output, hidden

    def _current_weights(self) -> list[Tensor]:
        """The parameters in ``_flat_weights`` order, as they are now.

        ``torch.nn.GRU`` refreshes ``_flat_weights`` when a parameter was replaced (as
        ``torch.func.functional_call`` does); it costs microseconds per call, a tenth of a
        small training step on CPU, so there the parameters are looked up directly. CUDA keeps
        torch's refresh (it re-flattens the weights for cuDNN), and so do parametrized weights
        (``spectral_norm`` computes its weight at every lookup: the same lookups as torch's
        give the same weights).
        """
        if "parametrizations" not in self._modules:  # not is_parametrized(self), 20x faster
            try:
                parameters = self._parameters
                weights = [parameters[name] for name in self._flat_weights_names]
            except KeyError:  # a weight replaced by a plain tensor attribute
                weights = [getattr(self, name) for name in self._flat_weights_names]
            if weights[0].is_cpu:
                # torch's input checks read _flat_weights: keep it current (functional_call
                # replaces parameters without telling it)
                if weights[0] is not self._flat_weights[0]:
                    self._flat_weights = weights
                return weights
        self._update_flat_weights()
        return self._flat_weights

    def _check_kernel_args(
        self, data: Tensor, hx: Tensor, weights: list[Tensor], seq_dim: int | None
    ) -> None:
        """The checks torch makes inside its C++ GRU, made here so both backends agree.
        ``seq_dim`` is None for packed data (no rows at all is an empty result there). Under
        autocast the state may differ in dtype from the input, as with torch's GRU: autocast
        casts both (and so does ``gru`` for the kernel)."""
        if seq_dim is not None and data.size(seq_dim) == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        if hx.dtype != data.dtype and not autocast_enabled(data.device.type):
            raise RuntimeError(
                f"GRU: hx dtype ({hx.dtype}) does not match input dtype ({data.dtype})"
            )
        if data.is_cpu and hx.is_cpu and all(w is not None and w.is_cpu for w in weights):
            return  # (a weight set to None: gru() raises torch's TypeError)
        for tensor, name in ((hx, "hx"), *((w, "weights") for w in weights)):
            if tensor is not None and tensor.device != data.device:
                raise RuntimeError(
                    f"GRU: input is on {data.device} but {name} is on {tensor.device}; "
                    "move the module and its inputs to the same device"
                )
