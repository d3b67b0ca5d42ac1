import Jadugar
