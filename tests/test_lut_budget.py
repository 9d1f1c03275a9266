"""The --luts search on the tool's counts, with the builds played by stand-ins: what is built
next, what is kept, and how failures end it."""
import pytest

from boards import BuildError, DoesNotFit
from boards.axis import axis_top_resources
from gen.fold import estimated_luts, fold_for_luts
from gen.ir import load_network
from gen.lut_budget import BudgetRound, fold_within_counted_luts, next_fold
from gen.networks import DEFAULT_NETWORK
from gen.report import lut_budget_check, yosys_lut_count
from tests.handmade import write_tiny_network

TIMING = ("the design does not meet timing on LFE5U-25F-6BG381C: Fmax 86.21 MHz, clock 100 MHz; "
          "build with --clock 86.21 or less")


@pytest.fixture
def tiny(tmp_path):
    return load_network(write_tiny_network(tmp_path))


def model_luts(net, fold):
    return round(estimated_luts(net, fold, axis_top_resources))


def counted(luts, budget):
    """A stand-in build's report: the tool counted ``luts`` for a ``budget``."""
    return {"lut_budget": budget, "resources": {"lut": luts}}


def test_no_fold_slower_than_a_build_within_the_budget_is_synthesized(tiny):
    # Real tiny-network figures: the 460-cycle fold, model 1,952 LUTs, Yosys 1,735.
    within = BudgetRound(fold_for_luts(tiny, 2000, axis_top_resources), 460, 1952,
                         yosys_lut_count(1735), "built", counted(1735, 2000))
    faster = fold_for_luts(tiny, 2000 + 217, axis_top_resources)
    assert next_fold(tiny, 2000, [within], axis_top_resources) == faster
    # Yosys counts the faster fold past the budget; the cheaper pick after it is no faster
    # than the build already within the budget, and the one after that is built already.
    over = BudgetRound(faster, 432, 2137, yosys_lut_count(2206), "built", counted(2206, 2000))
    assert next_fold(tiny, 2000, [within, over], axis_top_resources) is None
    assert next_fold(tiny, 2000, [over, within], axis_top_resources) is None


def test_a_later_build_that_fails_ends_the_search_and_the_build_within_is_kept(tiny):
    first = fold_for_luts(tiny, 2000, axis_top_resources)
    faster = fold_for_luts(tiny, 2000 - (1735 - model_luts(tiny, first)), axis_top_resources)

    def build(fold):
        if fold == first:
            return "built", counted(1735, 2000)
        assert fold == faster
        raise BuildError(TIMING)

    fold, output, report = fold_within_counted_luts(tiny, first, build, 2000, axis_top_resources)
    assert (fold, output) == (first, "built")
    assert report["lut_budget_rounds"] == [
        {"interval_cycles": 460, "resource_model_lut": model_luts(tiny, first), "yosys_lut": 1735,
         "kept": True},
        {"interval_cycles": 432, "resource_model_lut": model_luts(tiny, faster), "error": TIMING,
         "kept": False}]


def test_a_first_pick_past_the_part_in_luts_is_chosen_again_by_the_count_in_its_error(tiny):
    first = fold_for_luts(tiny, 2150, axis_top_resources)
    past = DoesNotFit("the design does not fit the part: it needs 2206 LUTs (Yosys estimate), the "
                      "part has 2200", resource="LUTs", used=2206, available=2200)
    cheaper = fold_for_luts(tiny, 2150 - (2206 - model_luts(tiny, first)), axis_top_resources)

    def build(fold):
        if fold == first:
            raise past
        assert fold == cheaper
        return "built", dict(counted(2050, 2150),
                              resource_model={"lut": model_luts(tiny, cheaper)})

    fold, output, report = fold_within_counted_luts(tiny, first, build, 2150, axis_top_resources)
    assert (fold, output) == (cheaper, "built")
    failed, kept = report["lut_budget_rounds"]
    assert failed == {"interval_cycles": 432, "resource_model_lut": model_luts(tiny, first),
                      "yosys_lut": 2206, "error": str(past), "kept": False}
    assert kept["kept"] and kept["yosys_lut"] == 2050
    assert f"(chosen again: the 432-cycle fold failed: {past}); Yosys counts 2,050, within" in (
        lut_budget_check(report))


def test_a_budget_past_the_part_is_cut_to_the_part_after_a_build_past_it(tiny):
    first = fold_for_luts(tiny, 2400, axis_top_resources)
    within_part = fold_for_luts(tiny, 2200 - (2500 - model_luts(tiny, first)), axis_top_resources)
    built = []

    def build(fold):
        built.append(fold)
        if fold == first:
            raise DoesNotFit("past the part", resource="LUTs", used=2500, available=2200)
        return "built", dict(counted(2150, 2400),
                             resource_model={"lut": model_luts(tiny, fold)})

    fold, _, _ = fold_within_counted_luts(tiny, first, build, 2400, axis_top_resources)
    assert built[:2] == [first, within_part] and fold == within_part


def test_a_first_build_that_fails_for_anything_but_luts_is_the_error(tiny):
    first = fold_for_luts(tiny, 2150, axis_top_resources)

    def build(fold):
        raise BuildError(TIMING)

    with pytest.raises(BuildError, match=r"^the design does not meet timing"):
        fold_within_counted_luts(tiny, first, build, 2150, axis_top_resources)


def test_no_fold_cheap_enough_for_the_counted_luts_is_one_clear_error():
    net = load_network(DEFAULT_NETWORK)
    over = BudgetRound(None, 56_448, 9_000, yosys_lut_count(14_000), "built",
                       counted(14_000, 5_000))
    with pytest.raises(BuildError, match=r"^--luts 5,000: Yosys counts 14,000 LUTs for a fold "
                       r"the resource model puts at 9,000 LUTs, and no fold is 9,000 LUTs cheaper; "
                       r"accepted: a larger --luts, or a fold set with --fold$"):
        next_fold(net, 5_000, [over], axis_top_resources)
