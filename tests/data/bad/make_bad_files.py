"""Writes the bad-input corpus in this folder. Run once; the outputs are committed.

.venv/bin/python tests/data/bad/make_bad_files.py
"""

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOOD_ROWS = [
    ("a1", "my card has not arrived yet", "card_arrival"),
    ("a2", "how long until my new card comes", "card_arrival"),
    ("a3", "what is the exchange rate today", "exchange_rate"),
    ("a4", "which rate do you use to convert euros", "exchange_rate"),
    ("a5", "I was charged a fee for paying by card", "card_payment_fee_charged"),
    ("a6", "why is there an extra fee on my card payment", "card_payment_fee_charged"),
]


def csv(name: str, text: str) -> None:
    (HERE / name).write_text(text, encoding="utf-8")


def rows(header: str, body: list[tuple]) -> str:
    return header + "\n" + "\n".join(",".join(r) for r in body) + "\n"


def main() -> None:
    csv("good.csv", rows("id,text,label", GOOD_ROWS))
    (HERE / "empty.csv").write_bytes(b"")
    csv("header_only.csv", "id,text,label\n")
    (HERE / "binary.csv").write_bytes(b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)) * 4)
    (HERE / "cp1252.csv").write_bytes(
        "id,text,label\nb1,caf\u00e9 card payment,card_payment_fee_charged\nb2,fine,exchange_rate\n".encode(
            "cp1252"
        )
    )
    csv("no_label.csv", "id,text\nc1,hello there\nc2,another text\n")
    csv("ambiguous_label.csv", "text,label,category\nhello,x,y\nworld,x,z\n")
    csv(
        "empty_text.csv",
        rows("id,text,label", [GOOD_ROWS[0], ("a2", "  ", "card_arrival"), *GOOD_ROWS[2:]]),
    )
    csv(
        "missing_label.csv",
        rows("id,text,label", [*GOOD_ROWS[:3], ("a4", "no label here", ""), *GOOD_ROWS[4:]]),
    )
    csv(
        "duplicate_ids.csv",
        rows("id,text,label", [*GOOD_ROWS[:4], ("a2", "same id again", "exchange_rate")]),
    )
    csv(
        "single_class.csv", rows("id,text,label", [(i, t, "card_arrival") for i, t, _ in GOOD_ROWS])
    )
    csv("ragged.csv", "id,text,label\nr1,fine,card_arrival\nr2,too,many,fields,here\n")
    csv("duplicate_columns.csv", "id,text,text,label\nd1,a,b,x\nd2,c,d,y\n")
    csv("bad.jsonl", '{"id": "j1", "text": "fine", "label": "x"}\n{"id": "j2", "text": oops}\n')
    csv("data.xlsx", "not really a spreadsheet")
    csv(
        "annotations_unknown_label.csv",
        "item_id,annotator_id,label\na1,w1,card_arrival\na1,w2,card_arival\na3,w1,exchange_rate\n",
    )
    csv(
        "annotations_unknown_item.csv",
        "item_id,annotator_id,label\na1,w1,card_arrival\nzz9,w2,card_arrival\n",
    )
    csv("annotations_missing_column.csv", "item,label\na1,card_arrival\n")
    csv("classes_missing_one.json", json.dumps(["card_arrival", "exchange_rate"]))
    k, n = 3, len(GOOD_ROWS)
    good = np.full((n, k), 0.1)
    good[np.arange(n), [0, 0, 2, 2, 1, 1]] = 0.8
    np.save(HERE / "probs_wrong_width.npy", good[:, :2] / good[:, :2].sum(1, keepdims=True))
    neg = good.copy()
    neg[3] = [-0.2, 0.6, 0.6]
    np.save(HERE / "probs_negative.npy", neg)
    bad_sum = good.copy()
    bad_sum[1] *= 3
    np.save(HERE / "probs_bad_sum.npy", bad_sum)
    np.save(HERE / "probs_slightly_off.npy", good * 1.004)
    np.save(HERE / "probs_wrong_length.npy", good[:4])
    nan = good.copy()
    nan[2, 1] = np.nan
    np.save(HERE / "probs_nan.npy", nan)
    np.save(HERE / "embeddings_wrong_length.npy", np.ones((n + 2, 8), dtype=np.float32))
    np.save(HERE / "dynamics_wrong_shape.npy", np.zeros((3, n, k + 1), dtype=np.float32))
    np.save(HERE / "pickled.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


if __name__ == "__main__":
    main()
