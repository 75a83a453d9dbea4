"""The one part of the build pyproject.toml cannot say: the dashboard.

The Streamlit app stays in the top-level ``app/`` (where the project's layout puts it),
and the build maps that folder to the package ``mltrail._app``, so that a wheel (and so
every non-editable install) carries it as ``mltrail/_app/``. An editable install reads
the repository's ``app/`` itself. ``mltrail ui`` looks in both places
(``mltrail.cli.runs.app_entrypoint``). pyproject's ``packages.find`` cannot rename a
folder to a subpackage, hence the list here.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages("src"), "mltrail._app"],
      package_dir={"": "src", "mltrail._app": "app"})
