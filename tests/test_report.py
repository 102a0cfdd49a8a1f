"""`grpclab report` and the notebooks, on a small real run committed as a fixture (tests/data/sample-run).

The report: every image is a PNG beside the page, one summary row per cell, failed and saturated cells flagged,
figures the run has no data for left out with a note, bad input one line and exit 2. The notebooks (marker
`notebooks`, `tox -e notebooks`): stored without outputs, and each runs top to bottom against the session's run.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import nbformat
import pandas as pd
import pytest

from bench import cli
from bench.analysis import figures, findings, report, results, stability
from bench.run import sample as sample_run
from bench.spec import AXES

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
FIXTURE = REPO / "tests" / "data" / "sample-run"
NOTEBOOKS = ("compare_configs", "compression", "compare_runs")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What the sample spec (bench/specs/sample.toml) has data for, and what it lacks.
SAMPLE_DRAWN = {"gzip", "workers", "tls", "open_loop", "latency_percentiles", "streaming"}
SAMPLE_LEFT_OUT = {"payload", "processes", "links", "python_cost", "handlers", "clients", "channels", "options"}


class Page(HTMLParser):
    """The parts of index.html the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.rows: dict[str, str] = {}  # data-cell -> class
        self.skipped: list[str] = []  # ids of the notes for figures left out
        self.scripts = 0
        self._row: str | None = None
        self.row_text: dict[str, str] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "script" or (tag == "link" and "stylesheet" in (a.get("rel") or "")):
            self.scripts += 1
        elif tag == "tr" and "cell" in classes:
            self._row = a["data-cell"]
            self.rows[self._row] = " ".join(c for c in classes if c != "cell")
            self.row_text[self._row] = ""
        elif tag == "p" and "skipped" in classes:
            self.skipped.append(a["id"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self.row_text[self._row] += data + " "


def grpclab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the committed sample run (`grpclab run bench/specs/sample.toml`), so reports can go beside it."""
    return Path(shutil.copytree(FIXTURE, tmp_path_factory.mktemp("report") / "sample-run"))


@pytest.fixture(scope="session")
def thin_run(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run without open-loop, streaming and TLS cells, one cell failed, one cell saturated (and no other)."""
    df = results.load(run_dir)
    df = df[(df["mode"] == "closed") & (df["rpc"] == "unary") & (df["tls"] == "off")].copy()
    failed = df["cell_key"].str.contains("/w16/")  # the sync 16-worker cell: all its repetitions failed
    metrics = [c for c in df.columns if df[c].dtype == "float64" and c not in AXES]
    df.loc[failed, metrics] = math.nan
    df.loc[failed, ["failed", "error"]] = [True, "server exited with code 1 (made up by the test)"]
    df["loadgen_saturated"] = df["cell_key"].str.contains("/w1/")  # only the sync 1-worker cell
    out = tmp_path_factory.mktemp("report") / "thin-run"
    out.mkdir()
    shutil.copy(run_dir / results.MANIFEST, out / results.MANIFEST)
    df.to_parquet(out / results.PARQUET)
    return out


@pytest.fixture(scope="session")
def page(run_dir: Path) -> tuple[Path, Page]:
    """The report of the sample run, written by what `grpclab report RUN_DIR` runs."""
    index = report.write(run_dir)
    assert index == run_dir / "report" / "index.html"
    return index, Page(index.read_text())


# -- the report ------------------------------------------------------------------


def test_the_report_opens_with_the_findings(run_dir: Path, page: tuple[Path, Page]) -> None:
    index, _ = page
    text = index.read_text()
    df, manifest = results.load(run_dir), results.read_manifest(run_dir)
    found = findings.compute(df, manifest)
    assert found, "the sample run supports findings"
    # the first section after the lead and the warnings: before the figures, the table and the manifest
    body = text[text.index("<body>") :]
    sections = [
        body.index(marker)
        for marker in ('<section class="findings"', "<h2>Figures</h2>", "<h2>Summary", "<h2>Manifest")
    ]
    assert sections == sorted(sections)
    assert "<h2>" not in body[: sections[0]] and "<figure" not in body[: sections[0]]
    section = body[sections[0] : body.index("</section>") + len("</section>")]
    note = findings.machine_note(manifest, found)
    assert section == findings.to_html(found, note)
    assert section.count('<li class="finding ') == len(found)
    assert note and note in section  # the sample run has no calibration: its line says what that means
    # beside the page: findings.json, which reads back as what the run's cells give; summary.md opens with them
    document = findings.read(index.parent / findings.FILE_NAME)
    assert document == findings.Document(str(df["run_id"].iloc[0]), found, note)
    markdown = (index.parent / report.SUMMARY).read_text()
    assert markdown.index("## Findings") < markdown.index("## Cells") < markdown.index("| ")
    assert findings.to_markdown(found, note) in markdown


def test_every_image_is_a_png_beside_the_page(page: tuple[Path, Page]) -> None:
    index, html = page
    assert html.images, "the report has no figure"
    assert html.scripts == 0, "the page must need no script or external stylesheet"
    for src in html.images:
        assert "/" not in src and ":" not in src, f"{src}: not a relative path beside index.html"
        path = index.parent / src
        assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{src}: not a PNG"
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 400, f"{src}: suspiciously small ({image.shape})"


def test_sample_run_draws_its_figures_and_notes_the_rest(page: tuple[Path, Page]) -> None:
    index, html = page
    assert {Path(src).stem for src in html.images} == SAMPLE_DRAWN
    assert set(html.skipped) == SAMPLE_LEFT_OUT
    text = index.read_text()
    assert "only one payload size (4 KiB)" in text
    assert "no go cell with a sync or aio cell of the same other axes" in text
    assert 'id="python-cost"' not in text  # no Python-against-Go section without a go cell
    assert "Held fixed" in text and "min..max across repetitions" in text


def test_summary_has_one_row_per_cell_and_flags_saturation(run_dir: Path, page: tuple[Path, Page]) -> None:
    index, html = page
    df = results.load(run_dir)
    assert set(html.rows) == set(df["cell_key"]) and len(html.rows) == df["cell_key"].nunique()
    markdown = (index.parent / report.SUMMARY).read_text()  # the same table, for pull requests
    assert markdown.count("gen-saturated") == sum("gen-saturated" in text for text in html.row_text.values())
    assert len([line for line in markdown.splitlines() if line.startswith("| ")]) == 1 + len(html.rows)  # + header
    saturated = set(df.loc[df["loadgen_saturated"], "cell_key"])
    for key, css in html.rows.items():
        assert ("gen-saturated" in html.row_text[key]) == (key in saturated), key
        assert ("saturated" in css) == (key in saturated and not df.loc[df["cell_key"] == key, "failed"].any())


def test_footer_and_manifest_name_the_machine_and_code(run_dir: Path, page: tuple[Path, Page]) -> None:
    index, _ = page
    env = results.read_manifest(run_dir).environment
    text = index.read_text()
    footer = figures.footer_text(results.read_manifest(run_dir))
    assert env.cpu_model in footer and env.versions["grpcio"] in footer and env.git.commit[:12] in footer
    assert footer in text
    for section in ("<h2>Manifest</h2>", "<h3>Environment</h3>", "<h3>Placement</h3>", "<h3>Spec"):
        assert section in text


def test_missing_data_failed_and_saturated_cells(thin_run: Path, tmp_path: Path) -> None:
    index = report.write(thin_run, tmp_path / "out")
    html = Page(index.read_text())
    text = index.read_text()
    assert {Path(src).stem for src in html.images} == {"gzip", "workers", "latency_percentiles"}
    assert {"open_loop", "tls", "streaming", "payload", "processes"} <= set(html.skipped)
    assert "the run has no open-loop cells" in text and "the run has no TLS or mTLS cells" in text
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == sorted(f"{s}.png" for s in ["gzip", "workers",
                                                                               "latency_percentiles"])  # fmt: skip
    failed = [k for k in html.rows if "/w16/" in k]
    saturated = [k for k in html.rows if "/w1/" in k]
    assert len(failed) == 1 and len(saturated) == 1
    assert html.rows[failed[0]] == "failed" and "2 failed" in html.row_text[failed[0]]
    assert html.rows[saturated[0]] == "saturated" and "gen-saturated" in html.row_text[saturated[0]]
    assert [k for k, css in html.rows.items() if css in ("failed", "saturated")] == [
        k for k in html.rows if k in failed + saturated
    ]
    # every other flagged row is unstable, by the one rule (bench.analysis.stability), and says in what
    unstable = set(stability.unstable_cells(results.load(thin_run))) - set(failed + saturated)
    assert {k for k, css in html.rows.items() if css == "unstable"} == unstable
    assert all("CV" in html.row_text[k] for k in unstable)
    assert "1 of 10 cells had failed repetitions" in text and "In 1 of 10 cells the load generator" in text


def test_report_again_removes_figures_the_data_no_longer_has(run_dir: Path, thin_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report.write(run_dir, out)
    assert (out / "tls.png").is_file()
    shutil.copy(thin_run / results.PARQUET, tmp_path / results.PARQUET)
    shutil.copy(thin_run / results.MANIFEST, tmp_path / results.MANIFEST)
    report.write(tmp_path, out)
    assert not (out / "tls.png").exists()


@pytest.mark.parametrize("damage", ["not a run", "corrupt manifest", "corrupt table"])
def test_bad_input_is_one_line_and_exit_2(damage: str, run_dir: Path, tmp_path: Path, capsys) -> None:
    if damage == "corrupt manifest":
        (tmp_path / results.MANIFEST).write_text("{not json")
    elif damage == "corrupt table":
        shutil.copy(run_dir / results.MANIFEST, tmp_path / results.MANIFEST)
        (tmp_path / results.PARQUET).write_bytes(b"PAR1 this is not parquet")
    assert cli.main(["report", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grpclab report: error: "), err
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_grpclab_report_prints_the_path_of_its_index(tmp_path: Path) -> None:
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    proc = grpclab("report", str(run))
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == run / "report" / "index.html" and proc.stderr == ""
    assert (run / "report" / "gzip.png").is_file()


@pytest.mark.slow
def test_a_sample_run_is_made_on_demand_and_completed(tmp_path: Path) -> None:
    """What the notebooks fall back to on a fresh clone: a real run, finished like any run (status and end time)."""
    made = sample_run.make(tmp_path / "sample", duration=0.2, warmup=0.1)
    manifest = results.read_manifest(made)
    assert manifest.status == "complete" and manifest.ended_at >= manifest.started_at
    df = results.load(made)
    assert len(df) == manifest.steps and not df["failed"].any(), df["error"].tolist()


def test_hold_fixed_compares_like_with_like(run_dir: Path) -> None:
    ok = figures.ok_rows(results.load(run_dir))
    sub, held = figures.hold_fixed(ok, ["workers", "impl"])
    # aio rows (workers 0) stay as the reference; every other axis has one value
    assert set(sub["impl"]) == {"sync", "aio"} and set(sub["workers"]) == {0, 1, 4, 16}
    for axis in AXES:
        if axis not in ("workers", "impl"):
            assert sub[axis].astype(str).nunique() == 1, axis
    assert held["compression"] == "none" and held["tls"] == "off" and held["mode"] == "closed"
    # the gzip study is held where the compressed cells are, not at the most common cell overall
    sub, held = figures.hold_fixed(ok, ["compression", "payload_kind"])
    assert set(sub["compression"]) == {"none", "grpc-gzip", "app-gzip-1", "app-gzip-9"} and held["impl"] == "sync"


def test_knee_is_the_highest_rate_before_the_first_breach() -> None:
    points = pd.DataFrame({"rate": [100.0, 200.0, 400.0, 800.0], "med": [1.0, 4.0, 12.0, 3.0]})
    assert figures.knee(points, slo_ms=5.0) == 200.0
    assert figures.knee(points, slo_ms=50.0) == 800.0
    assert figures.knee(points, slo_ms=0.5) is None


# -- the notebooks ------------------------------------------------------------------


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip outputs before committing"
    first = next(c for c in nb.cells if c.cell_type == "code").source
    # the run directory is chosen at the top, and the environment can point the notebook elsewhere
    assert "GRPCLAB_RUN_DIR" in first and ("newest_or_sample" in first or "GRPCLAB_RUN_DIR_B" in first)


def _execute(name: str, cwd: Path) -> list[str]:
    """Run the notebook in a fresh kernel started in ``cwd``; returns the text the cells printed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from nbclient import NotebookClient

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.fail("no python3 kernel: install ipykernel in this environment (pip install -e '.[dev]')")
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import os\nprint('cwd:', os.getcwd())"))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    texts, images = [], 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
            images += "image/png" in output.get("data", {})
    assert images, f"{name}: drew no figure"
    assert texts[-1].strip() == f"cwd: {REPO}", "the notebook did not move to the repo root"
    return texts


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "cwd", "second"),
    [
        ("compare_configs", NOTEBOOK_DIR, False),
        ("compression", REPO, False),
        ("compare_runs", REPO, False),  # one run: compared with itself, split by repetition
        ("compare_runs", NOTEBOOK_DIR, True),  # two runs
    ],
    ids=["compare_configs", "compression", "compare_runs-split", "compare_runs-two-runs"],
)
def test_notebook_runs_top_to_bottom(
    name: str, cwd: Path, second: bool, run_dir: Path, thin_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRPCLAB_RUN_DIR", str(run_dir))
    if second:
        monkeypatch.setenv("GRPCLAB_RUN_DIR_B", str(thin_run))
    else:
        monkeypatch.delenv("GRPCLAB_RUN_DIR_B", raising=False)
    out = "\n".join(_execute(name, cwd))
    flat = " ".join(out.split())
    found = findings.compute(results.load(run_dir), results.read_manifest(run_dir))
    # each notebook starts from the run's findings, and its sections from theirs
    if name == "compare_configs":
        model = next(f for f in found if f.study == "server_model")
        assert " ".join(model.headline.split()) in flat
        assert flat.index(" ".join(model.headline.split())) < flat.index("held fixed:")  # before its tables
        for f in found:
            if f.study in ("server_model", "thread_pool", "tls"):
                assert " ".join(f.sentence.split()) in flat, f.study
        assert "no finding: the run has no cells that compare processes" in flat
    if name == "compression":
        (gzip,) = [f for f in found if f.study == "compression"]
        assert " ".join(gzip.sentence.split()) in flat
        assert flat.index(" ".join(gzip.sentence.split())) < flat.index("held fixed:")
        assert "break-even Mbit/s" in out and "min..max Mbit/s" in out
        assert "pays on links slower than" in out
    if name == "compare_runs":
        assert ("against itself" in out) != second
        thin = results.load(thin_run)
        common = (
            thin.loc[~thin["failed"], "cell_key"].nunique() if second else results.load(run_dir)["cell_key"].nunique()
        )
        assert f"{common} cells in both runs" in out
        df_a = results.load(run_dir)
        if second:
            in_a, in_b = len(found), len(findings.compute(results.load(thin_run), results.read_manifest(thin_run)))
        else:  # one repetition each: A is every cell's first, B its second
            first, last = sorted(df_a["repetition"].unique())[:2]
            manifest = results.read_manifest(run_dir)
            in_a = len(findings.compute(df_a[df_a["repetition"] == first], manifest))
            in_b = len(findings.compute(df_a[df_a["repetition"] == last], manifest))
        assert f"findings: {in_a} in A, {in_b} in B;" in out
    assert os.environ["GRPCLAB_RUN_DIR"] == str(run_dir)
