# The test server's modules run in its own venv (.venv-girder), not in the project's.
collect_ignore = ["platform_api.py", "serve.py"]
