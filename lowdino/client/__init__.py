"""A client of the LowDINO job service over plain HTTP (`lowdino runs ...`): it knows the REST API and
its event stream, never the server's code, so the library still imports neither server nor worker."""
