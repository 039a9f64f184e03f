"""``ReferenceGRU``: a ``torch.nn.GRU`` whose forward runs the readable pure-torch reference.

It is the test oracle of :class:`lightning_gru.nn.GRU` for the cell ``torch.nn.GRU`` does not have
(``reset_after=False``), and a check of itself for the one it does (``reset_after=True``).
"""

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lightning_gru.functional.reference import reference_gru

__all__ = ["ReferenceGRU"]


class ReferenceGRU(torch.nn.GRU):
    """``torch.nn.GRU`` with a Python-loop forward and a choice of cell.

    Same parameters, initialisation, inputs and outputs as ``torch.nn.GRU`` (``batch_first``,
    unbatched 2-D input, optional ``h0``, ``PackedSequence`` in and out); the forward pass calls
    :func:`lightning_gru.functional.reference.reference_gru`, so it is slow and differentiable by
    autograd.

    Args:
        *args: as ``torch.nn.GRU`` (``input_size, hidden_size, num_layers, bias, batch_first,
            dropout, bidirectional, device, dtype``).
        reset_after: ``True`` for the cuDNN / torch cell
            ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``False`` for Cho et al. (2014)
            ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``.
        **kwargs: as ``torch.nn.GRU``.

    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> gru = ReferenceGRU(3, 4, batch_first=True, reset_after=False)
    >>> out, h_n = gru(torch.randn(2, 5, 3))
    >>> out.shape, h_n.shape
    (torch.Size([2, 5, 4]), torch.Size([1, 2, 4]))
    """

    def __init__(self, *args, reset_after: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reset_after = reset_after

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset_after={self.reset_after}"

    def _layer_weights(self) -> list[tuple[Tensor, Tensor, Tensor | None, Tensor | None]]:
        """Per (layer, direction) ``(w_ih, w_hh, b_ih, b_hh)``, from ``_flat_weights``.

        ``forward`` refreshes those first, as ``torch.nn.GRU.forward`` does, so that
        ``torch.func.functional_call``, reassigned parameters and parametrizations (read exactly
        as often as torch reads them: spectral norm updates itself on every read) behave alike.
        """
        step = 4 if self.bias else 2
        weights = []
        for k in range(0, len(self._flat_weights), step):
            w_ih, w_hh, *biases = self._flat_weights[k : k + step]
            b_ih, b_hh = biases if biases else (None, None)
            weights.append((w_ih, w_hh, b_ih, b_hh))
        return weights

    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        self._update_flat_weights()
        D = 2 if self.bidirectional else 1
        packed = isinstance(input, PackedSequence)
        is_batched = True
        lengths = None
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            self.check_input(data, batch_sizes)
            x, lengths = pad_packed_sequence(input)  # (T, B, I), original batch order
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"GRU: Expected input to be 2D or 3D, got {input.dim()}D instead")
            is_batched = input.dim() == 3
            if not is_batched:
                if hx is not None and hx.dim() != 2:
                    raise RuntimeError(
                        "For unbatched 2-D input, hx should also be 2-D but got "
                        f"{hx.dim()}-D tensor"
                    )
                input = input.unsqueeze(0 if self.batch_first else 1)
                hx = hx.unsqueeze(1) if hx is not None else None
            elif hx is not None and hx.dim() != 3:
                raise RuntimeError(
                    f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor"
                )
            self.check_input(input, None)
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)

        B = x.shape[1]
        if hx is None:
            hx = x.new_zeros(self.num_layers * D, B, self.hidden_size)  # (L * D, B, H)
        self.check_hidden_size(hx, (self.num_layers * D, B, self.hidden_size))

        output, h_n = reference_gru(
            x,
            hx,
            self._layer_weights(),
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            reset_after=self.reset_after,
            lengths=lengths,
            dropout=self.dropout,
            training=self.training,
        )  # (T, B, D * H), (L * D, B, H)

        if packed:
            if sorted_indices is not None:
                output = output.index_select(1, sorted_indices)  # (T, B, D * H), sorted order
                lengths = lengths.index_select(0, sorted_indices.cpu())
            data = pack_padded_sequence(output, lengths, enforce_sorted=True).data  # (N, D * H)
            return PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices), h_n
        if self.batch_first:
            output = output.transpose(0, 1)  # (B, T, D * H)
        if not is_batched:
            output = output.squeeze(0 if self.batch_first else 1)  # (T, D * H)
            h_n = h_n.squeeze(1)  # (L * D, H)
        return output, h_n
