# mlops-tui's notebook runner: executes a Jupyter notebook as it is, with nbclient and an IPython
# kernel, printing every output of every cell as it arrives (flushed, so the engine's log reader sees
# metrics and epochs while they are printed) and saving the executed notebook after each cell.
# Usage: python3 runner.py NOTEBOOK.ipynb EXECUTED.ipynb
# A failing cell ends the run with a Python-style traceback naming the cell ("cell In[4]") and its
# line; a line that needs the network (%pip install, !wget ...) fails before it runs, as a
# ConnectionError, since training containers have none.
import os
import re
import sys
import warnings

os.environ.setdefault("JUPYTER_RUNTIME_DIR", "/tmp/jupyter/runtime")
os.environ.setdefault("JUPYTER_DATA_DIR", "/tmp/jupyter/data")
os.environ.setdefault("JUPYTER_CONFIG_DIR", "/tmp/jupyter/config")
os.environ.setdefault("IPYTHONDIR", "/tmp/ipython")
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
# The kernel's debugger warns about frozen modules on every start: noise in the training log.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
warnings.filterwarnings("ignore", message="Code cell is missing an id field")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError, DeadKernelError  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NETWORK = re.compile(
    r"^\s*(%pip|!pip|%conda|!conda|!wget|!curl|!git\s+clone|!apt|%%bash.*|!kaggle|!gdown)\b.*$", re.M
)
# IPython 8's frames: "Cell In[4], line 3" and "File /usr/lib/python3/...py:123, in f(...)".
CELL_FRAME = re.compile(r"^(?:Cell|Input) In ?\[(\d+)\], line (\d+)")
FILE_FRAME = re.compile(r"^File (\S+?):(\d+), in ")


def say(text, err=False):
    stream = sys.stderr if err else sys.stdout
    stream.write(text)
    if not text.endswith("\n"):
        stream.write("\n")
    stream.flush()


class Streaming(NotebookClient):
    """Prints each output message as the kernel sends it, before nbclient stores it in the cell."""

    def process_message(self, msg, cell, cell_index):
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content = msg.get("content", {})
        if kind == "stream":
            say(content.get("text", ""), err=content.get("name") == "stderr")
        elif kind in ("execute_result", "display_data"):
            text = content.get("data", {}).get("text/plain")
            if text:
                say(text)
        return super().process_message(msg, cell, cell_index)


def save(nb, path):
    tmp = path + ".tmp"
    nbformat.write(nb, tmp)
    os.replace(tmp, path)


def traceback_of(notebook, cell_no, source, error):
    """A Python-style traceback of a cell's error, that people and mlops-tui's triage both read."""
    lines = ["Traceback (most recent call last):"]
    frames = []
    for raw in error.get("traceback", []):
        for line in ANSI.sub("", raw).splitlines():
            m = CELL_FRAME.match(line.strip())
            if m:
                frames.append((f"/workspace/{notebook}, cell In[{cell_no}]", int(m.group(2))))
                continue
            m = FILE_FRAME.match(line.strip())
            if m:
                frames.append((m.group(1), int(m.group(2))))
    if not frames:
        frames.append((f"/workspace/{notebook}, cell In[{cell_no}]", 1))
    code = source.splitlines()
    for file, line in frames:
        lines.append(f'  File "{file}", line {line}, in <cell>')
        if file.startswith("/workspace/") and 0 < line <= len(code):
            lines.append("    " + code[line - 1].strip())
    lines.append(f"{error.get('ename', 'Error')}: {error.get('evalue', '')}")
    return "\n".join(lines)


def main():
    notebook, executed = sys.argv[1], sys.argv[2]
    nb = nbformat.read(notebook, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for n, cell in enumerate(code_cells, 1):
        m = NETWORK.search(cell.source)
        if m:
            line = cell.source[: m.start()].count("\n") + 1
            say(
                "Traceback (most recent call last):\n"
                f'  File "/workspace/{notebook}, cell In[{n}]", line {line}, in <cell>\n'
                f"    {m.group(0).strip()}\n"
                f"ConnectionError: `{m.group(0).strip()}` needs the network (cell In[{n}], line {line})",
                err=True,
            )
            return 1
    def on_cell_complete(cell, cell_index, **_):
        if cell.cell_type == "code":
            save(nb, executed)

    client = Streaming(
        nb,
        timeout=None,
        startup_timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": os.getcwd()}},
        on_cell_complete=on_cell_complete,
    )
    try:
        client.execute()
    except CellExecutionError:
        failed = next(
            (c for c in code_cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        save(nb, executed)
        if failed is None:
            raise
        n = code_cells.index(failed) + 1
        error = next(o for o in failed.outputs if o.get("output_type") == "error")
        say(f"notebook {notebook}: cell In[{n}] failed", err=True)
        say(traceback_of(notebook, n, failed.source, error), err=True)
        return 1
    except DeadKernelError as e:
        save(nb, executed)
        say(f"notebook {notebook}: the kernel died ({e})", err=True)
        return 137
    save(nb, executed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
