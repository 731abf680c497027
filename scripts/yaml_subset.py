"""A small reader for the YAML subset of Prometheus rule files and promtool test files (used by
scripts/check-observability, which needs nothing outside Python's standard library): block
mappings and sequences, plain / single- / double-quoted one-line scalars, [] and {}, | and >
block scalars, comments.
"""
import re


class YamlError(Exception):
    pass


def _strip_comment(s):
    quote = None
    i = 0
    while i < len(s):
        c = s[i]
        if quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
        elif quote == "'":
            if c == "'":
                quote = None
        elif c in "\"'" and (i == 0 or s[i - 1] in " :[{,-"):
            quote = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
        i += 1
    return s.rstrip()


def _split_key(s):
    if s[:1] in "\"'":
        v, end = _quoted(s, 0)
        rest = s[end:]
        if not rest.startswith(":"):
            raise YamlError(f"expected ':' after key in {s!r}")
        return v, rest[1:].strip()
    m = re.match(r"([^:]+?)\s*:(\s+|$)(.*)$", s)
    if not m:
        raise YamlError(f"expected 'key: value', got {s!r}")
    return m.group(1), m.group(3).strip()


def _quoted(s, i):
    q = s[i]
    out = []
    i += 1
    while i < len(s):
        c = s[i]
        if q == "'" and c == "'":
            if s[i + 1:i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if q == '"' and c == "\\":
            n = s[i + 1:i + 2]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/"}.get(n, "\\" + n))
            i += 2
            continue
        if q == '"' and c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise YamlError(f"unterminated quoted string in {s!r}")


def _scalar(s):
    if s == "[]":
        return []
    if s == "{}":
        return {}
    if s[:1] in "\"'":
        v, end = _quoted(s, 0)
        if s[end:].strip():
            raise YamlError(f"text after a quoted string: {s!r}")
        return v
    if s[:1] in "[{":
        raise YamlError(f"flow collections are not supported here: {s!r}")
    return s


class _Reader:
    def __init__(self, text):
        self.lines = text.replace("\t", "    ").split("\n")
        self.i = 0

    def _skip(self):
        while self.i < len(self.lines):
            s = self.lines[self.i].strip()
            if s and not s.startswith("#") and s != "---":
                return
            self.i += 1

    @staticmethod
    def _indent(line):
        return len(line) - len(line.lstrip(" "))

    def _peek(self):
        self._skip()
        if self.i >= len(self.lines):
            return None, None
        line = self.lines[self.i]
        n = self._indent(line)
        return n, _strip_comment(line[n:])

    def node(self, minimum):
        n, content = self._peek()
        if n is None or n < minimum:
            return None
        if content == "-" or content.startswith("- "):
            return self.seq(n)
        return self.map(n)

    def seq(self, n):
        out = []
        while True:
            k, content = self._peek()
            if k != n or not (content == "-" or content.startswith("- ")):
                if k is not None and k > n:
                    raise YamlError(f"line {self.i + 1}: unexpected indentation")
                return out
            rest = content[1:].lstrip(" ")
            if not rest:
                self.i += 1
                out.append(self.node(n + 1))
                continue
            col = n + (len(content) - len(rest))
            if re.match(r"""^(?:"[^"]*"|'[^']*'|[^'"\s][^:]*?)\s*:(\s|$)""", rest):
                line = self.lines[self.i]
                self.lines[self.i] = " " * col + line[col:]
                out.append(self.map(col))
            else:
                self.i += 1
                out.append(_scalar(rest))

    def map(self, n):
        out = {}
        while True:
            k, content = self._peek()
            if k is None or k < n:
                return out
            if k > n:
                raise YamlError(f"line {self.i + 1}: unexpected indentation")
            if content == "-" or content.startswith("- "):
                return out
            key, rest = _split_key(content)
            if key in out:
                raise YamlError(f"line {self.i + 1}: duplicate key {key!r}")
            self.i += 1
            if rest == "":
                nk, nc = self._peek()
                if nk is not None and (nk > n or (nk == n and (nc == "-" or nc.startswith("- ")))):
                    out[key] = self.node(nk)
                else:
                    out[key] = None
            elif rest[:1] in "|>":
                out[key] = self.block(rest, n)
            else:
                out[key] = _scalar(rest)

    def block(self, indicator, parent):
        raw = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() and self._indent(line) <= parent:
                break
            raw.append(line)
            self.i += 1
        while raw and not raw[-1].strip():
            raw.pop()
        body = [l for l in raw if l.strip()]
        if not body:
            return ""
        ind = min(self._indent(l) for l in body)
        lines = [l[ind:] if l.strip() else "" for l in raw]
        text = "\n".join(lines) if indicator[0] == "|" else " ".join(l for l in lines if l)
        return text if indicator.endswith("-") else text + "\n"


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        r = _Reader(f.read())
    doc = r.node(0)
    r._skip()
    if r.i < len(r.lines):
        raise YamlError(f"line {r.i + 1}: could not read from here on")
    return doc
