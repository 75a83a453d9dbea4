"""As MLflow's examples/sklearn_autolog/grid_search_cv.py: a parent run for the search and
one child run per candidate."""

from sklearn import datasets, svm
from sklearn.model_selection import GridSearchCV

import mlflow

if __name__ == "__main__":
    mlflow.sklearn.autolog()
    iris = datasets.load_iris()
    parameters = {"kernel": ("linear", "rbf"), "C": [1, 10]}
    clf = GridSearchCV(svm.SVC(), parameters)
    with mlflow.start_run() as run:
        clf.fit(iris.data, iris.target)
    print(f"Logged data and model in run: {run.info.run_id}")
