"""Recipe search: budgeted hyperparameter search on the validation kNN, with early stopping (Optuna).

`config`      SearchConfig: the one model of a search's options (CLI and REST)
`space`       a search space parsed and checked against the run kind's config model before anything runs
`engine`      Optuna glue: samplers, pruners, asking a trial, following its validation-kNN records
`standalone`  `lowdino search`: trials in this process, one after another, an Optuna SQLite file beside them

Optuna is an optional dependency (`pip install 'lowdino[search]'`): only `engine` and `standalone`
import it, and only when a search runs.
"""
