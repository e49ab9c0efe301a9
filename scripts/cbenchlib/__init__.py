"""concurrency-bench's harness, in packages by job; a module imports only its own package and
those below it (tests/harness/test_layers.py holds the order):

    format  <-  plan  <-  run          file formats and vocabularies; a scenario resolved into a plan; executing it
    format  <-  analysis  <-  render   statistics, findings and decisions; tables, charts and the report
    cmd                                one thin module per `cbench` verb, on top of all
"""
