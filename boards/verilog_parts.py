"""Cut Amaranth's Verilog into parts that Yosys can synthesise one at a time.

A whole network can be too big for one Yosys run (YoWASP's Yosys has 4 GiB of WebAssembly
memory; the B-VGG16 top needs more). Amaranth writes one Verilog module per instance, named by
its place in the hierarchy, so the submodules of one instance (the accelerator's layers) and
everything below them make disjoint designs. ``split_design`` gives each its own Verilog text and
the rest of the design a text in which those submodules are empty black boxes.
"""
import re
from dataclasses import dataclass

MODULE_HEADER = re.compile(r"module\s+\\?(\S+?)\s*\(")
INSTANCE = re.compile(r"\s+\\?(\S+)\s+\S+\s*\($")
PORT = re.compile(r"\s+(input|output|inout)\b")


@dataclass(frozen=True)
class VerilogModule:
    """One ``module ... endmodule`` of the file, with the attribute lines before it."""
    name: str
    lines: tuple

    def text(self):
        return "".join(self.lines)

    def black_box(self):
        """This module's header and port declarations only, marked ``(* blackbox *)``."""
        header = next(line for line in self.lines if MODULE_HEADER.match(line))
        ports = [line for line in self.lines if PORT.match(line)]
        return "".join(["(* blackbox *)\n", header, *ports, "endmodule\n"])


def parse_modules(text):
    """The modules of Verilog ``text`` by name, in file order, and the lines before the first
    (comments such as lint waivers)."""
    modules, preamble, pending, current = {}, [], [], None
    for line in text.splitlines(keepends=True):
        if current is not None:
            current.append(line)
            if line.startswith("endmodule"):
                module = VerilogModule(name, tuple(current))
                modules[module.name] = module
                current, pending = None, []
            continue
        header = MODULE_HEADER.match(line)
        if header:
            name, current = header.group(1), [*pending, line]
        elif line.startswith("(*"):
            pending.append(line)
        elif not modules and not pending:
            preamble.append(line)
    if current is not None:
        raise ValueError(f"module {name} has no endmodule")
    return modules, "".join(preamble)


def instantiated(modules, name):
    """Names of the modules that module ``name`` instantiates, in order of first use."""
    children = []
    for line in modules[name].lines:
        match = INSTANCE.match(line)
        if match and match.group(1) in modules and match.group(1) not in children:
            children.append(match.group(1))
    return children


def with_descendants(modules, name, stop=()):
    """``name`` and every module below it, each once, not looking below those in ``stop``."""
    found = [name]
    for module in found:
        if module not in stop:
            found.extend(child for child in instantiated(modules, module) if child not in found)
    return found


def split_design(text, top, split_at):
    """Cut ``text`` at the submodules of module ``split_at``.

    Returns ``(parts, rest)``: ``parts`` maps each submodule's name to the Verilog of it and its
    descendants; ``rest`` is the Verilog of ``top`` and everything else, with those submodules as
    black boxes, so that every module is synthesised exactly once.
    """
    modules, preamble = parse_modules(text)
    for name in (top, split_at):
        if name not in modules:
            raise ValueError(f"the Verilog has no module {name}")
    parts = {child: "".join(modules[name].text() for name in with_descendants(modules, child))
             for child in instantiated(modules, split_at)}
    rest = [modules[name].black_box() if name in parts else modules[name].text()
            for name in with_descendants(modules, top, stop=parts)]
    return parts, preamble + "".join(rest)
