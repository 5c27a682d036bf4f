import os
import struct
import tempfile
import unittest

import numpy as np

from edgefleet_trainer.evalset import decode_evalset, encode_evalset, write_evalset, write_refpred


class EvalSetTest(unittest.TestCase):
    def test_layout_is_exact(self) -> None:
        x = np.arange(2 * 1 * 2 * 3, dtype=np.uint8).reshape(2, 1, 2, 3)
        y = np.array([7, 2])
        b = encode_evalset(x, y, 10)
        self.assertEqual(b[:4], b"EFEV")
        self.assertEqual(struct.unpack("<6I", b[4:28]), (1, 2, 1, 2, 3, 10))
        self.assertEqual(b[28:30], bytes([7, 2]))
        self.assertEqual(b[30:], bytes(range(12)))
        x2, y2, k = decode_evalset(b)
        np.testing.assert_array_equal(x2, x)
        np.testing.assert_array_equal(y2, y)
        self.assertEqual(k, 10)

    def test_rejects_bad_input(self) -> None:
        with self.assertRaises(ValueError):
            encode_evalset(np.zeros((2, 1, 2, 2), np.float32), np.zeros(2), 10)
        with self.assertRaises(ValueError):
            encode_evalset(np.zeros((2, 1, 2, 2), np.uint8), np.array([0, 10]), 10)
        with self.assertRaises(ValueError):
            decode_evalset(b"XXXX" + bytes(24))

    def test_files(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "e.bin")
            write_evalset(p, np.ones((3, 1, 8, 8), np.uint8), np.array([0, 1, 2]), 3)
            self.assertEqual(os.path.getsize(p), 28 + 3 + 3 * 64)
            r = os.path.join(d, "r.bin")
            write_refpred(r, np.array([1, 2, 0]))
            with open(r, "rb") as f:
                self.assertEqual(f.read(), bytes([1, 2, 0]))


if __name__ == "__main__":
    unittest.main()
