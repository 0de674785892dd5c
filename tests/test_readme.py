"""The README says what the code does: its option lists match the installed commands' parsers,
its test command is the line .ci/run runs, its main command's input ships in the repository
and its outputs are ignored by git."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLIS = ("m3v-encode", "m3v-decode", "m3v-info", "m3v-edit", "m3v-play", "m3v-mux", "m3v-demux")
# A command with subcommands is checked per subcommand, each entry its own (`m3v-batch encode ...`).
CLIS += ("m3v-batch encode", "m3v-batch verify", "m3v-batch eval")
#: An entry's option column may stand for every option of another command (m3v-batch encode takes
#: m3v-encode's): listed this way, they count as listed.
INHERITED = {"[m3v-encode's options]": "m3v-encode"}
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
MAX_SAMPLE_BYTES = 500_000


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(info string, lines) of every fenced code block."""
    blocks: list[tuple[str, list[str]]] = []
    lines: list[str] | None = None
    info = ""
    for line in text.splitlines():
        if line.startswith("```"):
            if lines is None:
                info, lines = line[3:].strip(), []
            else:
                blocks.append((info, lines))
                lines = None
        elif lines is not None:
            lines.append(line)
    return blocks


def readme_options() -> dict[str, set[str]]:
    """Options the README's usage blocks (plain ``` blocks) list for each command.

    A line starting with a command name (or a command and its subcommand) opens that command's
    entry; indented lines continue it.  A spec of :data:`INHERITED` adds the named command's
    options as ``@command``.
    """
    found: dict[str, set[str]] = {cli: set() for cli in CLIS}
    by_length = sorted(CLIS, key=len, reverse=True)  # "m3v-batch encode" before any shorter name
    for info, lines in fenced_blocks(README.read_text(encoding="utf-8")):
        if info:  # sh, python: examples, not option lists
            continue
        current = None
        for line in lines:
            opened = next((cli for cli in by_length if line == cli or line.startswith(cli + " ")), None)
            if opened is not None:
                current = opened
                line = line[len(opened) :]
            elif line and not line[0].isspace():
                current = None
            if current is not None:
                # the option column only: descriptions may name options of other commands
                spec = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0] if line.startswith(" ") else line
                found[current].update(OPTION.findall(spec))
                found[current].update(f"@{cli}" for marker, cli in INHERITED.items() if marker in spec)
    return found


def parser_options(cli: str) -> list[set[str]]:
    """The options of ``cli --help`` (``m3v-batch encode --help`` for a subcommand) except
    -h/--help, each as the set of its aliases (-o, --output)."""
    command, *subcommand = cli.split()
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"{command} is not installed (pip install -e .)")
    done = subprocess.run([path, *subcommand, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    options: list[set[str]] = []
    for line in done.stdout.splitlines():
        if not line.startswith("  -"):  # an option's line; deeper lines continue a description
            continue
        stripped = line.strip()
        spec = re.split(r"\s{2,}", stripped, maxsplit=1)[0]  # drop the description
        aliases = set(OPTION.findall(spec)) - {"-h", "--help"}
        if aliases:
            options.append(aliases)
    assert options, f"{cli} --help lists no options:\n{done.stdout}"
    return options


@pytest.fixture(scope="module")
def documented() -> dict[str, set[str]]:
    return readme_options()


@pytest.mark.parametrize("cli", CLIS)
def test_readme_lists_every_option_and_only_real_ones(cli, documented):
    real = parser_options(cli)
    listed = {option for option in documented[cli] if not option.startswith("@")}
    for inherited in (option[1:] for option in documented[cli] if option.startswith("@")):
        listed |= set().union(*parser_options(inherited))
    missing = sorted("/".join(sorted(aliases)) for aliases in real if not aliases & listed)
    assert not missing, f"README.md does not list these options of {cli}: {missing}"
    unknown = sorted(listed - set().union(*real))
    assert not unknown, f"README.md lists options {cli} does not have: {unknown}"


def fresh_machine_commands() -> list[str]:
    """The ```sh blocks of the README's "On a fresh machine" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    commands = []
    for info, lines in fenced_blocks(section):
        if info == "sh":
            body = [line for line in lines if line.strip()]
            assert len(body) == 1, f"a fresh-machine command must be one line: {body}"
            commands.append(body[0].strip())
    return commands


def test_readme_has_a_main_command_and_a_test_command():
    main, test = fresh_machine_commands()
    assert "pip install" in main and "m3v-encode" in main and "m3v-decode" in main
    assert "torch==2.13.0" in test and "pytest" in test
    # torch pinned and first: an unpinned torch pulls gigabytes of CUDA packages
    assert test.index("torch==2.13.0") < test.index("-e ")


def test_ci_runs_exactly_the_readme_test_command():
    _, test = fresh_machine_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in [line.strip() for line in ci], f".ci/run does not run the README's test command: {test}"


def test_main_command_input_ships_and_outputs_are_ignored():
    main, _ = fresh_machine_commands()
    words = shlex.split(main)
    inputs = [w for w in words if w.startswith("docs/sample/")]
    assert inputs, "the main command's input must ship in the repository (docs/sample/)"
    for name in inputs:
        assert (ROOT / name).is_file(), name
    outputs = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-o", "--output")]
    assert outputs
    ignored = {line.strip().lstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()}
    for name in outputs:
        assert name in ignored, f"{name} (made by the README's main command) is not in .gitignore"


def test_sample_clip_is_small_and_documented():
    sample = ROOT / "docs" / "sample"
    clips = sorted(p for p in sample.iterdir() if p.suffix in (".webm", ".mp4", ".mkv"))
    assert clips, "no sample clip in docs/sample/"
    for clip in clips:
        assert clip.stat().st_size < MAX_SAMPLE_BYTES, f"{clip.name}: {clip.stat().st_size} bytes"
    notes = (sample / "README.md").read_text(encoding="utf-8")
    for clip in clips:
        assert clip.name in notes
    assert "Apache-2.0" in notes and "tools/make_sample_clip.py" in notes


def test_sample_clip_decodes_to_what_its_readme_says():
    av = pytest.importorskip("av")
    clip = ROOT / "docs" / "sample" / "sample.webm"
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    notes = (ROOT / "docs" / "sample" / "README.md").read_text(encoding="utf-8")
    h, w, _ = frames[0].shape
    assert f"{w}x{h}" in notes and f"{len(frames)} frames" in notes
    # the scene cut halfway: the frames either side of it differ far more than neighbours do
    diffs = [abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    cut = max(range(len(diffs)), key=diffs.__getitem__)
    assert cut + 1 == len(frames) // 2
    assert diffs[cut] > 3 * sorted(diffs)[len(diffs) // 2]


def test_sample_clip_cut_is_found_by_the_default_keyframe_selection(tmp_path):
    """The README's main command on the sample: a keyframe on the cut (2.5 s: frame 20 at the
    default 8 fps), and clips of several frames on either side of it."""
    from m3cvc_codec import encode

    report = encode(ROOT / "docs" / "sample" / "sample.webm", tmp_path / "sample.m3v")
    firsts = [first for first, _ in report.clips]
    assert report.frames == 40 and 20 in firsts
    assert 3 <= len(report.clips) <= 20, report.clips


# Names docs/architecture.md uses that are not the project's: the paper's D(Fn, Fl), the example
# pack's class, PyAV, super().
NOT_OURS = {"D", "MyPack", "PyAV", "super"}
DOC_MODULES = (
    "m3cvc_format",
    "m3cvc_format.framedecoders",
    "m3cvc_format.opener",
    "m3cvc_codec",
    "m3cvc_codec.packs",
    "m3cvc_codec.packs.base",
    "m3cvc_codec.packs.config",
    "m3cvc_codec.descriptions",
    "m3cvc_codec.encoder",
    "m3cvc_codec.keyframes",
    "m3cvc_codec.video_io",
    "m3cvc_codec.clip_decoder",
    "m3cvc_codec.scorers",
    "m3cvc_codec.dialogue",
    "m3cvc_codec.models.hub",
    "m3cvc_codec.models.clip",
    "m3cvc_codec.models.flow",
    "m3cvc_codec.models.vlm",
)


def resolve(dotted: str) -> object:
    """The object a dotted name names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            value = getattr(value, attr)
        return value
    raise ImportError(dotted)


def test_architecture_names_are_the_code_names():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for dotted in sorted(set(re.findall(r"\bm3cvc_(?:format|codec)(?:\.[A-Za-z_]\w*)+", text))):
        try:
            resolve(dotted)
        except (ImportError, AttributeError) as err:
            pytest.fail(f"docs/architecture.md names {dotted}, which does not exist ({err})")
    known: set[str] = set()
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        for attr in dir(module):
            value = getattr(module, attr)
            known.add(attr)
            if isinstance(value, type) and value.__module__.startswith("m3cvc"):
                known.update(dir(value))
    # every call (name followed by "(") and every CamelCase class name the document uses
    used = set(re.findall(r"\b([A-Za-z_]\w*)\(", text)) | set(re.findall(r"\b([A-Z][a-z]+[A-Z][A-Za-z]*)\b", text))
    unknown = sorted(used - known - NOT_OURS)
    assert not unknown, f"docs/architecture.md uses names the code does not have: {unknown}"
