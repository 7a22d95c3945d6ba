"""`voicecoach voices`: the speech engines' voices, and adding or removing a Piper voice.

Click lives only in the command modules (cli.py, cli_options.py and a feature's commands.py); the
library they call never imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..cli_options import CONTEXT
from ..engines import ENGINES
from ..grammar import count


@click.group(context_settings=CONTEXT, invoke_without_command=True)
@click.option("--engine", type=click.Choice(sorted(ENGINES)), help="Only this engine [default: every speech engine].")
@click.option("--language", help="Only voices for this language (e.g. en, de).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def voices(ctx: click.Context, engine: str | None, language: str | None, as_json: bool) -> None:
    """List the speech engines, their voices and languages, and how to install a missing engine.

    A voice marked [auto: ...] is the one the default engine, auto, speaks those languages with.
    Add a Piper voice with `voicecoach voices add MODEL.onnx`.

    \b
    Example:
      voicecoach voices --language en
      voicecoach voices --engine piper
    """
    if ctx.invoked_subcommand is not None:
        return
    from . import auto_picks, list_voices, missing_engines, speech_engines

    missing = missing_engines()
    names = [engine] if engine else list(dict.fromkeys([*speech_engines(), *missing]))
    found = list_voices(engine, language)
    picks = auto_picks(found)
    if as_json:
        click.echo(json.dumps([{"engine": v.engine, "id": v.id, "name": v.name, "languages": list(v.languages),
                                "auto": list(picks.get((v.engine, v.id), ()))} for v in found], indent=1))
        return
    for name in names:
        if name in missing:
            click.echo(f"{name}: not installed ({missing[name].about}); install it with: {missing[name].install}")
            continue
        these = [v for v in found if v.engine == name]
        click.echo(f"{name}: {count(len(these), 'voice')} (write the id in a routine's `voice:` or pass --voice)")
        for v in these:
            auto = picks.get((v.engine, v.id))
            mark = f"  [auto: {', '.join(auto)}]" if auto else ""
            click.echo(f"  {v.id:<24} {', '.join(v.languages):<12} {v.name}{mark}")


@voices.command("add", context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="What `voice:` will call it [default: the model file's name without .onnx].")
@click.option("--language", help="Refuse the model unless its config says it speaks this language (e.g. de).")
def voices_add(model: Path, name: str | None, language: str | None) -> None:
    """Add a Piper voice: MODEL.onnx with its MODEL.onnx.json beside it.

    The model is checked (it loads and speaks; language, sample rate and speakers come from
    its config) and copied with its config into the data folder's voices/
    ($VOICECOACH_DATA_DIR/voices). From then on auto speaks its language with it, and
    `voice: NAME` (or NAME#speaker for a multi-speaker model) picks it in any routine.

    \b
    Example:
      voicecoach voices add ~/Downloads/de_DE-thorsten-medium.onnx
    """
    from .piper_voices import add_voice, voices_dir

    added = add_voice(model, name=name, language=language)
    speakers = f", {len(added.speakers)} speakers (voice: {added.name}#SPEAKER)" if added.speakers else ""
    click.echo(f"added {added.name}: {added.language}, {added.sample_rate} Hz{speakers}; licence: {added.licence} "
               f"-> {voices_dir()}")


@voices.command("remove", context_settings=CONTEXT)
@click.argument("name")
def voices_remove(name: str) -> None:
    """Remove a Piper voice added with `voicecoach voices add`.

    \b
    Example:
      voicecoach voices remove de_DE-thorsten-medium
    """
    from .piper_voices import remove_voice

    removed = remove_voice(name)
    click.echo(f"removed {removed.name} ({removed.language})")


