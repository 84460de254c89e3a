"""``seqrnn.LSTM`` and ``seqrnn.GRU``: the engine's recurrent stacks with the interface of
``torch.nn.LSTM`` and ``torch.nn.GRU`` (inference), on numpy arrays."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from . import _seqrnn

Array = np.ndarray


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _float32(name: str, value: Any) -> Array:
    a = np.asarray(value)
    if a.dtype != np.float32:
        raise ValueError(f"{name} must be a float32 array, got dtype {a.dtype}")
    return a


class _RNNBase:
    """What LSTM and GRU share: the weights in one block, PyTorch's names and shapes, the call."""

    _mode = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        *,
        seed: Optional[int] = None,
        cell: str = "",
    ) -> None:
        self.input_size = _positive("input_size", input_size)
        self.hidden_size = _positive("hidden_size", hidden_size)
        self.num_layers = _positive("num_layers", num_layers)
        self.bidirectional = bool(bidirectional)
        self.batch_first = bool(batch_first)
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**63))
        self._core = _seqrnn.Rnn(
            cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional, seed
        )
        self._tensors = {name: (tuple(shape), a, b) for name, shape, a, b in self._core.tensors()}

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def state_dict(self) -> Dict[str, Array]:
        """The weights under PyTorch's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...),
        float32 copies in ``state_dict`` order."""
        block = self._core.get_params()
        return {n: block[a:b].reshape(shape).copy() for n, (shape, a, b) in self._tensors.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Sets the weights from float32 arrays under PyTorch's names. With ``strict`` (the
        default) every name must be there and no other; a wrong name, shape or dtype raises
        ``ValueError`` naming what was expected."""
        if not isinstance(state_dict, Mapping):
            raise ValueError("state_dict must be a dict of name -> float32 array")
        expected = self._tensors
        unexpected = [k for k in state_dict if k not in expected]
        missing = [k for k in expected if k not in state_dict]
        if strict and (unexpected or missing):
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if unexpected:
                parts.append("unexpected " + ", ".join(map(str, unexpected)))
            raise ValueError(
                f"{self._mode} state_dict does not match the layer ({'; '.join(parts)}); "
                f"expected {', '.join(expected)}"
            )
        block = self._core.get_params()
        for name, value in state_dict.items():
            if name not in expected:
                continue
            shape, a, b = expected[name]
            arr = _float32(name, value)
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(arr.shape)}")
            block[a:b] = arr.reshape(-1)
        self._core.set_params(block)

    def _state_shape(self, batch: Optional[int]) -> Tuple[int, ...]:
        n = self.num_layers * self.num_directions
        return (n, self.hidden_size) if batch is None else (n, batch, self.hidden_size)

    def _check_state(self, name: str, value: Any, batch: Optional[int]) -> Array:
        arr = _float32(name, value)
        shape = self._state_shape(batch)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(arr.shape)}")
        return np.ascontiguousarray(arr if batch is not None else arr[:, None, :])

    def _run(self, input: Any, hx: Any) -> Tuple[Array, Array, Optional[Array]]:
        x = _float32("input", input)
        if x.ndim not in (2, 3):
            raise ValueError(
                f"input must be [T, B, {self.input_size}]"
                f"{' ([B, T, ...] with batch_first)' if self.batch_first else ''}"
                f" or unbatched [T, {self.input_size}], got shape {list(x.shape)}"
            )
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        if x.shape[2] != self.input_size or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                f"input must have {self.input_size} features and at least one step and row, "
                f"got shape {list(input.shape if hasattr(input, 'shape') else x.shape)}"
            )
        batch = x.shape[1] if batched else None
        h0, c0 = self._initial(hx, batch)
        y, h, c = self._core.forward(np.ascontiguousarray(x), h0, c0)
        if not batched:
            y, h = y[:, 0, :], h[:, 0, :]
            c = None if c is None else c[:, 0, :]
        elif self.batch_first:
            y = y.transpose(1, 0, 2)
        return y, h, c

    def _initial(self, hx: Any, batch: Optional[int]) -> Tuple[Optional[Array], Optional[Array]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        extra = ""
        if self.num_layers != 1:
            extra += f", num_layers={self.num_layers}"
        if self.batch_first:
            extra += ", batch_first=True"
        if self.bidirectional:
            extra += ", bidirectional=True"
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra})"


class _HiddenOnly(_RNNBase):
    """What the cells with a hidden state only (GRU, MinGRU, MinLSTM) share: ``layer(x, h0)``
    returns ``(y, h_n)``."""

    def _initial(self, hx: Any, batch: Optional[int]) -> Tuple[Optional[Array], Optional[Array]]:
        if hx is None:
            return None, None
        return self._check_state("h0", hx, batch), None

    def __call__(self, input: Any, hx: Optional[Any] = None) -> Tuple[Array, Array]:
        y, h, _ = self._run(input, hx)
        return y, h

    forward = __call__


class LSTM(_RNNBase):
    """A stack of LSTM layers, as ``torch.nn.LSTM`` (inference, numpy in and out).

    ``LSTM(input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=False)``;
    ``lstm(x, (h0, c0))`` with ``x`` float32 ``[T, B, input_size]`` (``[B, T, input_size]`` with
    ``batch_first``, or unbatched ``[T, input_size]``) and optional states
    ``[num_layers * directions, B, hidden_size]`` returns ``(y, (h_n, c_n))``. Weights start as
    PyTorch's default, ``U(-1/sqrt(H), 1/sqrt(H))`` (``seed`` draws them); ``load_state_dict``
    takes a ``torch.nn.LSTM``'s (as float32 numpy arrays).
    """

    _mode = "LSTM"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        *,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, bidirectional, batch_first, seed=seed, cell="lstm"
        )

    def _initial(self, hx: Any, batch: Optional[int]) -> Tuple[Optional[Array], Optional[Array]]:
        if hx is None:
            return None, None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ValueError("the LSTM's initial state must be a tuple (h0, c0)")
        return self._check_state("h0", hx[0], batch), self._check_state("c0", hx[1], batch)

    def __call__(
        self, input: Any, hx: Optional[Tuple[Any, Any]] = None
    ) -> Tuple[Array, Tuple[Array, Array]]:
        y, h, c = self._run(input, hx)
        assert c is not None
        return y, (h, c)

    forward = __call__


class GRU(_HiddenOnly):
    """A stack of GRU layers, as ``torch.nn.GRU`` (inference, numpy in and out).

    PyTorch's form (``reset_after=True``, the reset gate applied after the recurrent product)
    by default; ``reset_after=False`` is Keras' other form, with the same names and shapes.
    ``gru(x, h0)`` returns ``(y, h_n)``; shapes as for :class:`LSTM`.
    """

    _mode = "GRU"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        *,
        reset_after: bool = True,
        seed: Optional[int] = None,
    ) -> None:
        self.reset_after = bool(reset_after)
        cell = "gru" if self.reset_after else "gru-reset-before"
        super().__init__(
            input_size, hidden_size, num_layers, bidirectional, batch_first, seed=seed, cell=cell
        )


    def __repr__(self) -> str:
        r = super().__repr__()
        return r if self.reset_after else r[:-1] + ", reset_after=False)"


class _MinimalBase(_HiddenOnly):
    """What MinGRU and MinLSTM share: their constructor (no options beyond the sizes)."""

    _cell = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        *,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, bidirectional, batch_first, seed=seed, cell=self._cell
        )



class MinGRU(_MinimalBase):
    """A stack of minimal GRU layers (Feng et al. 2024, "Were RNNs All We Needed?"), called as
    :class:`GRU`: ``z = sigmoid(W_z x + b_z)``, ``h~ = g(W_h x + b_h)``,
    ``h = (1 - z) * h_prev + z * h~`` with ``g(v) = v + 0.5`` for ``v >= 0``, ``sigmoid(v)``
    below. Weights ``weight_ih_l{k} [2H, I]`` (rows ``z, h``) and ``bias_ih_l{k} [2H]`` only.
    """

    _mode = "MinGRU"
    _cell = "mingru"


class MinLSTM(_MinimalBase):
    """A stack of minimal LSTM layers (Feng et al. 2024), called as :class:`GRU`:
    ``f, i = sigmoid(.)``, ``h~ = g(.)``, ``h = (f * h_prev + i * h~) / (f + i)``. Weights
    ``weight_ih_l{k} [3H, I]`` (rows ``f, i, h``) and ``bias_ih_l{k} [3H]`` only.
    """

    _mode = "MinLSTM"
    _cell = "minlstm"


RNNModule = Union[LSTM, GRU, MinGRU, MinLSTM]
