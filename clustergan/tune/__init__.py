"""Sweeps: Ray Tune trials searched by Optuna; each trial trains through
:func:`clustergan.train.launch.run_training` (in-process or on Ray Train workers).

Layers. A module imports only modules of a lower layer (never one of its own layer or above), at module level;
there are no circles and no function-local imports of these modules. ``ray`` and ``optuna`` are imported
inside the functions that need them.

====  ================  ===========================================================  ======================
layer module            role                                                         imports from tune/
====  ================  ===========================================================  ======================
0     ``sweep_config``  the sweep YAML's schema, ``load_sweep``, ``with_values``     (none)
0     ``remote_fs``     a folder at a URI (``pyarrow.fs``): push, pull, list         (none)
0     ``race_rule``     racing's decision rule: paired tests, Holm, the rounds'      (none)
                        alpha (which candidate drops which)
1     ``records``       typed ``TrialSpec`` / ``TrialRecord``; the one reader and    sweep_config
                        writer of ``trial.json`` (schema versions, ``--migrate``)
1     ``space``         Optuna's space, baselines, a trial's training config         sweep_config
2     ``storage``       an experiment at a local folder or a URI (``Storage``)       records, remote_fs
2     ``ranking``       the trials' order: Pareto ranks, feasibility, groups         records, sweep_config
2     ``best_config``   ``best_config.yaml`` as ``extends:`` plus what differs       space, sweep_config
2     ``race_runs``     a race's runs: one in this process, or a round's as Ray      records, sweep_config
                        tasks side by side
2     ``sweep_adopt``   ``sweep --adopt``: a fixed trial's seeds taken from runs      space, sweep_config
                        trained elsewhere when they are the same training
2     ``feedback``      a raced ledger's seed means for the next study; the search   records, space,
                        that answers re-drawn known points (``KnownPointsSearch``)   sweep_config
3     ``page``          ``report.html``: the static page of an experiment            records
3     ``hparams``       ``hparams/``: the sweep in TensorBoard's HParams table       records
3     ``race_report``   a race's ranking with intervals, its Pareto plot with        best_config, race_rule,
                        error bars, its best config                                  race_runs, ranking,
                                                                                     records, sweep_config
3     ``race_adopt``    ``--adopt``: runs trained elsewhere taken as an entrant's     race_runs
                        seeds when they are the same training
3     ``study_db``      the Optuna study's SQLite storage, reopened in the local     storage
                        copy of whichever driver restores it
4     ``report``        the report (``ranking.csv``/``.md``, Pareto plot, best       records, storage,
                        config, page, HParams); ``clustergan report [URI]``          sweep_config, page,
                                                                                     hparams, ranking,
                                                                                     best_config
4     ``trial``         what runs inside one Tune trial (``run_trial``)              records, space, storage,
                                                                                     sweep_adopt
5     ``ledger``        the committed ledger of finished trials; seeds the study     feedback, records,
                                                                                     report, space,
                                                                                     sweep_config
5     ``progress``      the driver's progress line (trials done, best so far)        records, ranking
5     ``race``          ``clustergan race``: more seeds for the front and the        race_rule, race_runs,
                        controls, the entrants, the plan, the rounds                 race_report, records,
                                                                                     race_adopt, space,
                                                                                     ranking, sweep_config
6     ``driver``        one sweep run's Tune experiments: the trainable, the         feedback, ledger,
                        baselines' grid, the Optuna search, their restore            progress, records,
                                                                                     space, storage,
                                                                                     study_db,
                                                                                     sweep_config, trial
7     ``sweep``         ``run_sweep``: what a sweep run trains (ledger, clusters,    all of the above
                        baselines, search budget), its start and its report
====  ================  ===========================================================  ======================

``tests/test_tune_records.py`` checks this table against the imports.
"""
