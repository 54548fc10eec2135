"""The worker's command line: exactly the flags the platform passes, JSON lines out.

``--request interface`` posts the tool's fields for ``--parameters '{"image": IMAGE}'``;
``--request compute`` runs :func:`.compute.run`; ``--request preview`` runs
:func:`.preview.preview` (the current tile, drawn over the view; nothing uploaded).
Every problem a user can cause ends in one
``{"error": ..., "title": ..., "info": ..., "type": "error"}`` line saying what to do,
and exit status 1; success is exit status 0.
"""

from __future__ import annotations

import argparse
import json
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewseg-nimbus-worker",
                                description="fewseg as a NimbusImage annotation worker (run by the platform).")
    p.add_argument("--apiUrl", required=True, help="the server's API URL")
    p.add_argument("--token", required=True, help="the job's Girder token")
    p.add_argument("--request", required=True, choices=("interface", "compute", "preview"))
    p.add_argument("--parameters", required=True, help="the request's JSON parameters")
    p.add_argument("--datasetId", default=None, help="the dataset folder (compute)")
    return p


def _line(**message) -> None:
    print(json.dumps(message), flush=True)


def progress(fraction: float, title: str = "", info: str = "") -> None:
    _line(progress=round(float(fraction), 4), title=title, info=info)


def warning(message: str, title: str = "Warning", info: str | None = None) -> None:
    _line(warning=message, title=title, info=info, type="warning")


def error(message: str, title: str = "Error", info: str | None = None) -> None:
    _line(error=message, title=title, info=info, type="error")


def interface(source, image: str) -> None:
    """Post the tool's fields for ``image``."""
    from ..sam.registry import CHECKPOINTS
    from .interface import fields
    from .models import available

    here = available()  # the image's own checkpoints first; the default is one of them
    models = [*here, *(n for n in CHECKPOINTS if n not in here)]
    source.context.set_interface(image, fields(models, default_model=here[0] if here else "sam1_vit_b"))


def main(argv: list[str] | None = None) -> int:
    from .._reading import describe

    args = _parser().parse_args(argv)
    try:
        params = json.loads(args.parameters)
        if not isinstance(params, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
        error(f"--parameters is not a JSON object ({describe(exc)}); the platform passes the job's parameters here",
              "Bad parameters")
        return 1
    return _run(args, params)


def _run(args, params: dict) -> int:
    import requests

    from ..errors import FewsegError

    try:
        import girder_client
    except ImportError:
        error("fewseg was installed without the NimbusImage client; install it with pip install 'fewseg[nimbus]'",
              "Worker not installed")
        return 1
    try:
        from .server import DatasetSource

        source = DatasetSource(args.apiUrl, args.token, args.datasetId or params.get("datasetId"), params=params)
        if args.request == "interface":
            if not params.get("image") or not isinstance(params["image"], str):
                error('--parameters must name the worker image: {"image": "..."}', "Bad parameters")
                return 1
            interface(source, params["image"])
            return 0
        if not source.dataset_id:
            error(f"no dataset: the {args.request} request needs --datasetId", "Bad parameters")
            return 1
        if args.request == "preview":
            from .preview import preview

            record = preview(source, params, token=args.token, progress=progress, warning=warning)
            progress(1.0, "Preview", record["text"])
            return 0
        from .compute import earlier_note, run

        summary = run(source, params, progress=progress, warning=warning)
        rejected = f" and {summary['n_negatives']} not wanted" if summary["n_negatives"] else ""
        if summary["n_deleted_learned"]:
            rejected += f" and {summary['n_deleted_learned']} deleted result(s)"
        progress(1.0, "Done", f"{summary['n_objects']} objects in {summary['n_frames']} frame(s) from "
                              f"{summary['n_examples']} examples{rejected}{earlier_note(summary['n_earlier_kept'])}")
        return 0
    except FewsegError as exc:
        error(str(exc), "fewseg")
    except requests.exceptions.ConnectionError:
        error(f"cannot reach the NimbusImage server at {args.apiUrl}; check that it is running and that the "
              "worker's container can reach it (--apiUrl)", "Server unreachable")
    except girder_client.HttpError as exc:
        what = {401: "the token was refused (expired or wrong --token)",
                403: "the job's user may not read or write this dataset (or, for a preview, store previews)",
                404: "the dataset or an endpoint was not found (wrong --datasetId or an older server)"}
        error(f"the server answered {exc.status} to {exc.method} {exc.url}: "
              f"{what.get(exc.status, 'see the server log')}", "Server error", info=exc.responseText[:500])
    except Exception as exc:  # a bug: still one error line for the platform, the traceback on stderr
        import traceback

        traceback.print_exc()
        error(f"fewseg failed unexpectedly ({type(exc).__name__}: {exc}); please report it with the job's log",
              "Internal error")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
