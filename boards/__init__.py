"""Build targets: which FPGA part a ``--target`` name means and how its project is written."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    family: str
    default_part: str
    default_clock_mhz: float
    description: str


TARGETS = {
    "ultrascale": Target("ultrascale", "xcup", "xczu7ev-ffvc1156-2-e", 200.0,
                         "AMD Zynq UltraScale+ (ZCU104 part by default); Vivado project script"),
}


def get_target(name):
    """The ``Target`` called ``name``; ``ValueError`` listing the accepted names otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; accepted: {', '.join(TARGETS)}") from None
