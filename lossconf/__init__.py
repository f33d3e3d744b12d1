"""lossconf: does framework X compute loss L correctly, and how close is it to the truth?"""

__version__ = "0.1.0"
