"""``python manage.py fetch_models [NAME …]``: download model weights ahead of time.

With no names it fetches the models the app picks from by default (u2net and u2netp);
``--all`` adds the opt-in ones (u2net_human_seg). Files already present and valid are left
alone. Weights go to ``--model-dir``, else ``BGREMOVER_MODEL_DIR``, else the repository's
``models/`` directory, which is where the app looks for them.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bgremover.engine.errors import WeightsError
from bgremover.engine.weights_catalogue import (
    DEFAULT_CANDIDATES,
    MODELS,
    available_models,
    download_dir,
    find_weights,
)
from bgremover.engine.weights_check import read_weights
from bgremover.engine.weights_download import download_weights, source_url
from editor.management.download_progress import ProgressBar
from editor.weights_advice import explained


class Command(BaseCommand):
    help = (
        "Download U²-Net model weights ahead of time. With no names: "
        f"{', '.join(DEFAULT_CANDIDATES)}. Known: {', '.join(MODELS)}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "names", nargs="*", metavar="NAME", help=f"models to fetch ({', '.join(MODELS)})"
        )
        parser.add_argument("--all", action="store_true", help="fetch every known model")
        parser.add_argument(
            "--model-dir",
            help="directory to put weights in (default: BGREMOVER_MODEL_DIR, "
            "else the repository's models/)",
        )
        parser.add_argument(
            "--base-url",
            help="mirror to download from: BASE_URL/<file name> "
            "(default: BGREMOVER_WEIGHTS_URL, else the official links)",
        )
        parser.add_argument(
            "--force", action="store_true", help="download again even when a valid file is present"
        )
        parser.add_argument(
            "--list", action="store_true", help="show which models are present and exit"
        )

    def handle(self, *args, **options) -> None:
        model_dir = options["model_dir"] or settings.MODEL_DIR
        if options["list"]:
            self.list_models(model_dir)
            return
        unknown = [name for name in options["names"] if name not in MODELS]
        if unknown:
            raise CommandError(
                f"Unknown model(s): {', '.join(unknown)}. Known models: {', '.join(MODELS)}."
            )
        base_url = options["base_url"] or settings.WEIGHTS_URL
        names = list(MODELS) if options["all"] else options["names"] or list(DEFAULT_CANDIDATES)
        failures = []
        for name in dict.fromkeys(names):
            try:
                self.fetch(name, model_dir, base_url, options["force"])
            except WeightsError as exc:
                self.stderr.write(f"{name}: {explained(exc)}")
                failures.append(name)
        if failures:
            raise CommandError(f"Could not fetch: {', '.join(failures)} (see above).")

    def fetch(self, name: str, model_dir: str | None, base_url: str | None, force: bool) -> None:
        spec = MODELS[name]
        present = find_weights(name, model_dir)
        if present is not None and not force:
            try:
                read_weights(present, spec)
            except WeightsError as exc:
                self.stdout.write(
                    f"{name}: the file present is not usable, downloading again. ({exc})"
                )
            else:
                self.stdout.write(f"{name}: already present and valid at {present}")
                return
        target = download_dir(model_dir)
        self.stdout.write(
            f"{name}: downloading {spec.filename} ({spec.approx_size}) "
            f"from {source_url(spec, base_url)}"
        )
        bar = ProgressBar(self.stdout.write)
        try:
            path = download_weights(spec, target, base_url=base_url, progress=bar)
        finally:
            bar.finish()
        check = f"md5 {spec.md5}" if spec.md5 else "state-dict layout"
        self.stdout.write(self.style.SUCCESS(f"{name}: saved {path} ({check} verified)"))

    def list_models(self, model_dir: str | None) -> None:
        for name, path in available_models(model_dir):
            spec = MODELS[name]
            where = str(path) if path else "not present"
            self.stdout.write(
                f"{name:<16} {spec.approx_size:>13}  {where}\n{'':<16} {spec.description}"
            )
