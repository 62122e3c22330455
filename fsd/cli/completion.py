"""`fsd completion bash|zsh`: a shell completion script generated from the parser itself (verbs, their options
and choices), so it can never disagree with the command."""
from __future__ import annotations

import argparse


def _words(parser: argparse.ArgumentParser) -> list[str]:
    words: list[str] = []
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        words.extend(o for o in action.option_strings if o.startswith("--"))
        if not action.option_strings and action.choices and not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            words.extend(str(c) for c in action.choices)
    return sorted(set(words))


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    verbs = sorted(subparsers.choices)
    cases = "\n".join(f'    {verb}) words="{" ".join(_words(p))}";;' for verb, p in sorted(subparsers.choices.items()))
    body = f"""_fsd() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" words
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "{' '.join(verbs)} --version --help --log-level" -- "$cur")); return
  fi
  case "${{COMP_WORDS[1]}}" in
{cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [ ${{#COMPREPLY[@]}} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}}
complete -o filenames -F _fsd fsd
"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
