/// The REPL drivers of the code interpreter: small programs run inside the workspace (as E2B's user) that read one
/// JSON request a line on stdin (`{"code", "env"}`) and write the execution's events as JSON lines on stdout,
/// `{"type":"done"}` last. State lives in the driver's process between requests.
enum E2BKernelDrivers {
    /// Python: the cell runs in one namespace; the value of a last expression is the main result (its `repr`), and
    /// each matplotlib figure left open is a PNG result.
    static let python = #"""
import ast, base64, io, json, os, sys, time, traceback
os.environ.setdefault("MPLBACKEND", "Agg")
_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
_null = os.open(os.devnull, os.O_RDWR)
os.dup2(_null, 1)
os.dup2(_null, 2)
_requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
os.dup2(_null, 0)
sys.stdin = io.StringIO("")

def _emit(event):
    _out.write(json.dumps(event) + "\n")
    _out.flush()

class _Stream(io.TextIOBase):
    """Hands what the cell prints over a line at a time (as Jupyter does), the rest when the cell ends."""
    def __init__(self, name):
        self._name = name
        self._pending = ""
    def writable(self):
        return True
    def write(self, text):
        self._pending += text
        if "\n" in self._pending:
            complete, _, self._pending = self._pending.rpartition("\n")
            for line in (complete + "\n").splitlines(keepends=True):
                self._send(line)
        elif len(self._pending) > 65536:
            self.flush()
        return len(text)
    def flush(self):
        if self._pending:
            self._send(self._pending)
            self._pending = ""
    def _send(self, text):
        _emit({"type": self._name, "text": text, "timestamp": int(time.time() * 1e6)})

sys.stdout = _Stream("stdout")
sys.stderr = _Stream("stderr")
_namespace = {"__name__": "__main__", "__builtins__": __builtins__}
_count = 0

def _figures(skip):
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for number in plt.get_fignums():
        figure = plt.figure(number)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        if figure is not skip:
            _emit({"type": "result", "png": base64.b64encode(buffer.getvalue()).decode(), "text": repr(figure), "is_main_result": False})
    plt.close("all")

def _formats(value):
    result = {"type": "result", "text": repr(value), "is_main_result": True}
    try:
        import matplotlib.figure
        if isinstance(value, matplotlib.figure.Figure):
            buffer = io.BytesIO()
            value.savefig(buffer, format="png")
            result["png"] = base64.b64encode(buffer.getvalue()).decode()
    except Exception:
        pass
    for method, key in (("_repr_html_", "html"), ("_repr_markdown_", "markdown"), ("_repr_svg_", "svg"), ("_repr_latex_", "latex")):
        render = getattr(value, method, None)
        if callable(render):
            try:
                rendered = render()
                if isinstance(rendered, str):
                    result[key] = rendered
            except Exception:
                pass
    return result

def _run(code, env):
    global _count
    _count += 1
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    value = None
    try:
        tree = ast.parse(code, "<cell>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<cell>", "exec"), _namespace)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), _namespace)
            if value is not None:
                _namespace["_"] = value
        _figures(value)
        if value is not None:
            _emit(_formats(value))
    except BaseException as error:
        sys.stdout.flush()
        sys.stderr.flush()
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        # The driver's own frame is noise: keep the cell's.
        lines = [line for line in lines if 'File "<string>"' not in line]
        _emit({"type": "error", "name": type(error).__name__, "value": str(error), "traceback": "".join(lines)})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        _emit({"type": "number_of_executions", "execution_count": _count})
        _emit({"type": "done"})

for _line in _requests:
    try:
        _request = json.loads(_line)
    except ValueError:
        continue
    _run(_request.get("code", ""), _request.get("env") or {})
"""#

    /// JavaScript (Node): the cell runs in one `vm` context; the value of the cell (awaited when it is a promise)
    /// is the main result, as `util.inspect` shows it.
    static let javascript = #"""
const vm = require("vm"), util = require("util"), fs = require("fs"), readline = require("readline");
const emit = (event) => fs.writeSync(1, JSON.stringify(event) + "\n");
let count = 0;
const write = (type) => (...args) => emit({ type, text: util.format(...args) + "\n", timestamp: Date.now() * 1000 });
const sandboxConsole = { log: write("stdout"), info: write("stdout"), debug: write("stdout"), warn: write("stderr"), error: write("stderr") };
const context = vm.createContext({ console: sandboxConsole, require, process, Buffer, setTimeout, clearTimeout, setInterval, clearInterval, URL, TextEncoder, TextDecoder, fetch: globalThis.fetch });
const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  let request;
  try { request = JSON.parse(line); } catch { return; }
  queue = queue.then(() => run(request.code || "", request.env || {}));
});
async function run(code, env) {
  count += 1;
  const saved = {};
  for (const [name, value] of Object.entries(env)) { saved[name] = process.env[name]; process.env[name] = value; }
  try {
    let value = vm.runInContext(code, context, { filename: "<cell>" });
    if (value && typeof value.then === "function") value = await value;
    if (value !== undefined) emit({ type: "result", text: util.inspect(value), is_main_result: true });
  } catch (error) {
    const name = (error && error.name) || "Error", message = (error && error.message) || String(error);
    emit({ type: "error", name, value: message, traceback: (error && error.stack) || String(error) });
  } finally {
    for (const [name, value] of Object.entries(saved)) { if (value === undefined) delete process.env[name]; else process.env[name] = value; }
    emit({ type: "number_of_executions", execution_count: count });
    emit({ type: "done" });
  }
}
"""#
}
