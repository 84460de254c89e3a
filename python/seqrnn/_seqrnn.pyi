"""Type stubs of seqrnn's native module (python/src in the repository)."""

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]

class SeqrnnError(ValueError):
    """A refusal of the seqrnn library (bad input, a run that does not match, impossible
    settings), with its message."""

def set_threads(n: int) -> None:
    """Sets the threads of computations given none of their own (default: one a core)."""

def get_threads() -> int:
    """The threads of computations given none of their own."""

class Rnn:
    """The engine's recurrent stack (used by seqrnn.LSTM and seqrnn.GRU)."""

    num_params: int
    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        seed: int = 0,
    ) -> None: ...
    def tensors(self) -> List[Tuple[str, List[int], int, int]]: ...
    def get_params(self) -> _F32: ...
    def set_params(self, block: _F32) -> None: ...
    def forward(
        self, x: _F32, h0: Optional[_F32] = None, c0: Optional[_F32] = None
    ) -> Tuple[_F32, _F32, Optional[_F32]]: ...

class _Run:
    """What every loaded run has (not a class at run time: each task's class has these)."""

    @property
    def path(self) -> Path: ...
    @property
    def task(self) -> str: ...
    @property
    def num_params(self) -> int: ...
    @property
    def is_int8(self) -> bool: ...
    @property
    def threads(self) -> int: ...

class LanguageModel(_Run):
    """A language model (every-step or last-token run)."""

    @property
    def vocab_size(self) -> int: ...
    def generate(
        self,
        prompt: str = "",
        tokens: int = 40,
        temperature: float = 1.0,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        greedy: bool = False,
    ) -> str:
        """The prompt followed by `tokens` generated tokens, as `seqrnn generate` prints it."""
    def perplexity(self, text: str) -> float:
        """The perplexity of `text`, read as the training corpora are."""

class Translator(_Run):
    @overload
    def translate(self, sentences: str, beam: Optional[int] = 5) -> str: ...
    @overload
    def translate(self, sentences: Sequence[str], beam: Optional[int] = 5) -> List[str]: ...

class Tagger(_Run):
    @property
    def labels(self) -> List[str]: ...
    @overload
    def tag(self, sentences: str) -> List[str]: ...
    @overload
    def tag(self, sentences: Sequence[Union[str, Sequence[str]]]) -> List[List[str]]: ...

class Classifier(_Run):
    @property
    def labels(self) -> List[str]: ...
    @overload
    def predict(self, texts: str) -> Dict[str, Any]: ...
    @overload
    def predict(self, texts: Sequence[str]) -> List[Dict[str, Any]]: ...

class Forecaster(_Run):
    @property
    def input_columns(self) -> List[str]: ...
    @property
    def columns(self) -> List[str]: ...
    @property
    def horizon(self) -> int: ...
    @property
    def lookback(self) -> int: ...
    def predict(self, table: Union[_Path, npt.ArrayLike]) -> _F64:
        """The forecast `[horizon, len(columns)]` after the table's last row."""

_Recording = Union[_Path, Tuple[npt.ArrayLike, int]]

class Recognizer(_Run):
    @property
    def sample_rate(self) -> int: ...
    @overload
    def transcribe(self, wavs: _Recording) -> str: ...
    @overload
    def transcribe(self, wavs: Sequence[_Recording]) -> List[str]: ...

def load(
    path: _Path, threads: Optional[int] = None
) -> Union[LanguageModel, Translator, Tagger, Classifier, Forecaster, Recognizer]:
    """The trained run in the folder `path`, as its task's class."""

def run_command(
    args: List[str],
    callback: Optional[Callable[[Dict[str, Any]], None]] = None,
    resume_hint: str = "",
    threads: Optional[int] = None,
) -> None: ...
def _tiny_runs(dir: _Path) -> List[Tuple[str, Path]]: ...
