"""How a run gets executed: the job queue, worker processes, backends (local, Ray) and the OpenMP policy."""
