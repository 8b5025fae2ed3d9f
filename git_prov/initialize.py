"""``git prov init``: prepare a repository. Every step is idempotent and optional; every
other command works in a repository that was never initialised."""

from __future__ import annotations

from git_prov.config import CONFIG_NAME, template_text
from git_prov.store.ledger import DISPLAY_REF, Ledger
from git_prov.store.repo import GitRepo


def init(repo: GitRepo, *, display: bool = True, hooks: bool = True) -> list[str]:
    """Prepare ``repo``; returns one line per step saying what was done or already so."""
    done: list[str] = []
    config_path = repo.root / CONFIG_NAME
    if config_path.exists():
        done.append(f"{CONFIG_NAME}: already present, left as it is")
    else:
        config_path.write_text(template_text())
        done.append(f"{CONFIG_NAME}: written (edit it, then commit it to share the defaults)")
    if display:
        current = repo.git("config", "--get-all", "notes.displayRef", check=False)
        refs = current.stdout.decode().split()
        if DISPLAY_REF in refs:
            done.append("git log: already shows runs (notes.displayRef)")
        else:
            repo.git("config", "--add", "notes.displayRef", DISPLAY_REF)
            done.append(
                "git log: now shows each commit's runs "
                f"(git config notes.displayRef {DISPLAY_REF}; undo with "
                f"git config --unset notes.displayRef {DISPLAY_REF})"
            )
        # Runs recorded before init (or fetched) get their display lines now.
        Ledger(repo).refresh_display(force=True)
    if hooks:
        from git_prov.hooks_install import install_hook

        # Amend and rebase re-attach runs to the new commits (docs/cli.md, remap).
        done.extend(install_hook(repo, "post-rewrite"))
    return done
