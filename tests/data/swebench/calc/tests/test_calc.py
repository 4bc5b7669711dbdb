import unittest

from calc import add, mul


class CalcTest(unittest.TestCase):
    def test_add_zero(self):
        self.assertEqual(add(2, 0), 2)
