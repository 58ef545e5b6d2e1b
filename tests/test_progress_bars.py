"""Progress bars in a notebook kernel without ipywidgets: tqdm.auto falls back to text bars but first warns
`TqdmWarning: IProgress not found. Please update jupyter and ipywidgets` (the probing notebook showed it, from a
geodino bar or from torchmetrics -> transformers importing tqdm.auto). `import geodino` now imports tqdm.auto there
with that warning ignored: the same text bars, no warning. Elsewhere it imports no tqdm."""

from __future__ import annotations

import subprocess
import sys

# a Jupyter kernel as tqdm.autonotebook detects one (ipykernel's shell module loaded) where ipywidgets cannot be
# imported (the venv has none; the stub makes sure); every warning printed on stderr
KERNEL = """
import sys, types, warnings
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
ipython = types.ModuleType("IPython")
ipython.get_ipython = lambda: type("ZMQInteractiveShell", (), {})()
sys.modules["IPython"] = ipython
sys.modules["ipywidgets"] = None
warnings.simplefilter("always")
"""


def _run(code: str, kernel: str = KERNEL) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", kernel + code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_a_kernel_without_ipywidgets_gets_text_bars_without_a_warning():
    assert "TqdmWarning: IProgress not found" in _run("import tqdm.auto").stderr  # the fake kernel shows it
    done = _run(
        "import geodino\n"
        "from geodino.embed.map_outputs import progress\n"
        "from tqdm import std\n"
        "import tqdm.auto, tqdm.autonotebook\n"  # a geodino bar, and a library's own import (transformers)
        "assert issubclass(tqdm.auto.tqdm, std.tqdm) and tqdm.autonotebook.tqdm is std.tqdm\n"
        "assert list(progress(range(3), total=3, desc='x')) == [0, 1, 2]\n"
    )
    assert "IProgress" not in done.stderr and "Warning" not in done.stderr


def test_outside_a_kernel_or_with_widgets_nothing_is_imported():
    check = "import geodino\nassert not [m for m in sys.modules if m.startswith('tqdm')], sorted(sys.modules)\n"
    _run(check, kernel="import sys\n")  # plain Python: import geodino stays cheap
    widgets = KERNEL.replace('sys.modules["ipywidgets"] = None', 'sys.modules["ipywidgets"] = types.ModuleType("w")')
    widgets = widgets.replace("import sys,", "import importlib.machinery, sys,")
    widgets += 'sys.modules["ipywidgets"].__spec__ = importlib.machinery.ModuleSpec("ipywidgets", None)\n'
    _run(check, kernel=widgets)  # tqdm.auto's widget bars are left to tqdm.auto when a bar is made
