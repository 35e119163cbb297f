"""TensorBoard's HParams records for a run: the experiment (which params are columns, which metrics) and the
run's session (its params, start, end and status), as event protos for the backend's event file.

The swept parameters and the sweep id lead the columns: they are marked as differing, which is what
TensorBoard's dashboard sorts by (then by name); plumbing (paths, tracking settings) is left out, so the table
compares what was varied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runkit.repro.config_keys import is_plumbing
from runkit.storage.status import Status

# Our final status -> the HParams session status (aborted/preempted runs did not fail: unknown).
HPARAMS_STATUS = {
    Status.COMPLETED: "STATUS_SUCCESS",
    Status.FAILED: "STATUS_FAILURE",
    Status.CRASHED: "STATUS_FAILURE",
}


def hparam_value(value: Any) -> bool | int | float | str:
    """A param as HParams can hold it (None and anything else as a string)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return "None" if value is None else str(value)


def _summary_event(tag: str, content: Any) -> Any:
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    value = Summary.Value(
        tag=tag, metadata=metadata.create_summary_metadata(content), tensor=metadata.NULL_TENSOR
    )
    return Event(wall_time=time.time(), step=0, summary=Summary(value=[value]))


def hparams_experiment(
    params: Mapping[str, bool | int | float | str],
    first: Sequence[str],
    session_metrics: Mapping[str, float],
    start_time: float,
) -> Any:
    """The experiment: the swept params (`first`) then the other science knobs as columns; the monitored
    metric's best value, the test metrics and log_hparams' metrics as session metrics."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    kinds = {bool: api_pb2.DATA_TYPE_BOOL, str: api_pb2.DATA_TYPE_STRING}
    rest = sorted(k for k in params if k not in first and not is_plumbing(k))
    infos = [
        api_pb2.HParamInfo(
            name=key,
            type=kinds.get(type(params[key]), api_pb2.DATA_TYPE_FLOAT64),
            differs=key in first,
        )
        for key in [*first, *rest]
        if key in params
    ]
    metrics = [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=tag)
        for tag in sorted(session_metrics, key=lambda t: (not t.startswith("best/"), t))
    ]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics, time_created_secs=start_time)
    return _summary_event(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def hparams_session(
    run_id: str,
    params: Mapping[str, bool | int | float | str],
    status: Status,
    start_time: float,
    end_time: float,
) -> list[Any]:
    """The run's session: its start (every param) and its end (status and time)."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(group_name=run_id, start_time_secs=start_time)
    for key, value in sorted(params.items()):
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = str(value)
    end = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.Status.Value(HPARAMS_STATUS.get(status, "STATUS_UNKNOWN")), end_time_secs=end_time
    )
    return [
        _summary_event(
            metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)
        ),
        _summary_event(
            metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)
        ),
    ]
