"""Tables a user hands the client (a publish, an offline ingest), as the Arrow tables fsd works on."""
from __future__ import annotations

from typing import TYPE_CHECKING

from fsd.errors import error_for_code

if TYPE_CHECKING:
    import pyarrow as pa


def data_table(data: object, what: str = "table") -> pa.Table:
    """Rows going in (a publish, an offline ingest) as an Arrow table: an Arrow table or record batch, or a pandas
    DataFrame (its index dropped; nullable Int64 columns stay int64 with nulls); anything else is an InvalidArgument
    naming `what`, never an AttributeError from deep inside."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "to_dict") and hasattr(data, "columns") and hasattr(data, "dtypes"):  # pandas, without importing it
        try:
            return pa.Table.from_pandas(data, preserve_index=False)  # type: ignore[arg-type]
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise error_for_code("INVALID_ARGUMENT", f"{what}: the DataFrame does not convert to Arrow: {str(exc)[:200]}", what) from None
    raise error_for_code("INVALID_ARGUMENT", f"{what}: {type(data).__name__} is not an Arrow table or a pandas DataFrame", what)
